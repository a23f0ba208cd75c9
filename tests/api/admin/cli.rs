use std::io::Write;
use std::process::Stdio;

use portico::crypto::MasterKey;

use super::{EMAIL, PASSWORD, audit_count, client, sign_in};
use crate::helpers::{Backend, TestDb, portico_command, spawn_app_with};

fn create_admin(db: &TestDb, key: &MasterKey, email: &str, password: &str) -> std::process::Output {
    admin_create(portico_command(db, key), email, password)
}

/// Runs `cmd admin create --email EMAIL --password-stdin` with `password` on stdin.
pub fn admin_create(
    mut cmd: std::process::Command,
    email: &str,
    password: &str,
) -> std::process::Output {
    let mut child = cmd
        .args(["admin", "create", "--email", email, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `portico ARGS`, asserts success, returns stdout trimmed.
fn succeed(db: &TestDb, key: &MasterKey, args: &[&str]) -> String {
    let out = portico_command(db, key).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "portico {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn admin_create_and_token_from_the_command_line() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let key = MasterKey::generate();

    let out = create_admin(&db, &key, EMAIL, PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(EMAIL));

    let out = create_admin(&db, &key, EMAIL, PASSWORD);
    assert!(!out.status.success(), "a second admin with the same e-mail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let out = create_admin(&db, &key, "bob@example.com", "short");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"));

    let token = succeed(&db, &key, &["admin", "token", "--name", "ci"]);
    assert!(token.starts_with("pat_"), "{token}");

    succeed(&db, &key, &["keys", "rotate"]);

    let app = spawn_app_with(&db, key, |_| {}).await;
    let actor: String =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'keys.rotated'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(actor, "cli", "portico keys rotate is audited");
    assert_eq!(
        sign_in(&app, &client(), EMAIL, PASSWORD).await.status(),
        303
    );
    let res = app
        .client
        .get(app.url("/admin/api/v1/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("\"created_by\":\"cli\""), "{body}");
    assert!(!body.contains(&token));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_digest FROM admin_api_tokens")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 32, "a SHA-256 digest");
    assert_eq!(audit_count(&app, "admin.created").await, 1);
    assert_eq!(audit_count(&app, "api_token.created").await, 1);
    app.stop();
    db.cleanup().await;
}
