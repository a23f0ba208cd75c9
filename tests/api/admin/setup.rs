//! Setting up a fresh instance: the sign-in page says how to create the first admin (and never
//! offers to create one itself), `portico admin create` says which database it wrote to, and
//! the dashboard's checklist leads through provider, client, a first login and a webhook.

use portico::crypto::MasterKey;
use reqwest::Method;
use serde_json::json;

use super::cli::admin_create;
use super::{PASSWORD, api_token, call, client, create_admin, json_of, page, signed_in};
use crate::federation_flow::login_at;
use crate::helpers::{Backend, TestApp, TestDb, portico_command, spawn_app};
use crate::oidc_support::{REDIRECT, param, relying_party};
use crate::on_both_backends;
use crate::standins::google::{self, Account, GoogleStandIn};

on_both_backends!(
    the_sign_in_page_says_how_to_create_the_first_admin,
    a_remote_visitor_is_not_told_where_the_database_is,
    the_dashboard_checklist_ticks_each_step_until_all_are_done,
);

/// The `action` of every form in `html`.
fn form_actions(html: &str) -> Vec<String> {
    html.split("<form")
        .skip(1)
        .map(|form| {
            let tag = &form[..form.find('>').unwrap()];
            let start = tag.find("action=\"").map(|i| i + "action=\"".len());
            start
                .map(|s| tag[s..s + tag[s..].find('"').unwrap()].to_owned())
                .unwrap_or_default()
        })
        .collect()
}

async fn the_sign_in_page_says_how_to_create_the_first_admin(db: &TestDb) {
    let app = spawn_app(db).await;
    let html = page(&app, &client(), "/admin/sign-in").await;
    assert!(html.contains("id=\"no-admin\""), "{html}");
    assert!(
        html.contains("portico admin create --email you@example.com"),
        "{html}"
    );
    // The test server runs on its own database, not ./data: the command is pointed at it.
    let url = portico::config::DatabaseUrl::parse(&db.url).unwrap();
    assert!(
        html.contains(&format!("PORTICO_DATABASE_URL={}", url.without_password())),
        "{html}"
    );
    assert!(html.contains("12 characters"), "{html}");
    // The only form signs in: nothing on the page creates an admin.
    assert_eq!(form_actions(&html), ["/admin/sign-in"], "{html}");
    let res = client()
        .post(app.url("/admin/setup"))
        .form(&[
            ("email", "eve@example.com"),
            ("password", "eve-takes-over-now"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admins")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(admins, 0);

    create_admin(&app).await;
    let html = page(&app, &client(), "/admin/sign-in").await;
    assert!(!html.contains("id=\"no-admin\""), "{html}");
    assert!(!html.contains("portico admin create"), "{html}");
    assert!(!html.contains("PORTICO_DATABASE_URL"), "{html}");
    app.stop();
}

/// Before the first admin exists, anyone who reaches the port sees the sign-in page: the
/// command is shown to all, but where the database is (a path, a host, a user name) only to a
/// visitor on the server's own machine.
async fn a_remote_visitor_is_not_told_where_the_database_is(db: &TestDb) {
    let app = crate::helpers::spawn_app_with(db, MasterKey::generate(), |s| {
        s.server.trusted_proxies =
            portico::ops::client_ip::TrustedProxies::parse(["127.0.0.1"]).unwrap();
    })
    .await;
    let res = client()
        .get(app.url("/admin/sign-in"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("portico admin create --email you@example.com"),
        "{html}"
    );
    assert!(!html.contains("PORTICO_DATABASE_URL"), "{html}");
    assert!(!html.contains("PORTICO_DATA_DIR"), "{html}");
    let url = portico::config::DatabaseUrl::parse(&db.url).unwrap();
    assert!(!html.contains(&url.without_password()), "{html}");
    assert!(html.contains("the same settings as the server"), "{html}");
    app.stop();
}

/// Runs `portico admin create --email EMAIL --password-stdin` in `dir`, on the database that
/// the environment (not the test's database) names.
fn admin_create_in(
    db: &TestDb,
    dir: &std::path::Path,
    env: &[(&str, &str)],
    email: &str,
) -> (bool, String, String) {
    let mut cmd = portico_command(db, &MasterKey::generate());
    cmd.env_remove("PORTICO_DATABASE_URL")
        .current_dir(dir)
        .envs(env.iter().copied());
    let out = admin_create(cmd, email, PASSWORD);
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn admin_create_names_its_database_and_warns_when_it_made_a_new_one() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    // The default database, ./data/portico.db, in a directory where no server ever ran.
    let file = db
        .dir
        .canonicalize()
        .unwrap()
        .join("data")
        .join("portico.db");
    let (ok, stdout, stderr) = admin_create_in(&db, &db.dir, &[], "ada@example.com");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ada@example.com"), "{stdout}");
    assert!(stdout.contains(&file.display().to_string()), "{stdout}");
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("no database existed"), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(file.exists());

    // The second time the database is there: no warning.
    let (ok, stdout, stderr) = admin_create_in(&db, &db.dir, &[], "bob@example.com");
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&file.display().to_string()), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");

    // From another directory, pointed at the same data directory: the same file, no warning.
    let elsewhere = db.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let data_dir = db.dir.join("data");
    let (ok, stdout, stderr) = admin_create_in(
        &db,
        &elsewhere,
        &[("PORTICO_DATA_DIR", data_dir.to_str().unwrap())],
        "cy@example.com",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains(&file.display().to_string()), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(!elsewhere.join("data").exists());
    db.cleanup().await;
}

#[tokio::test]
async fn admin_create_names_a_postgres_database_without_its_password() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    // The test server trusts local connections, so a password in the URL is not checked: it
    // must still never be printed.
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some("hunter2-not-shown")).unwrap();
    let (ok, stdout, stderr) = admin_create_in(
        &db,
        &db.dir,
        &[("PORTICO_DATABASE_URL", url.as_str())],
        "ada@example.com",
    );
    assert!(ok, "{stderr}");
    let name = url.path().trim_start_matches('/');
    assert!(stdout.contains(name), "{stdout}");
    assert!(stdout.contains("postgres://"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    db.cleanup().await;
}

/// Each step of the dashboard's checklist: `Some(done)`, or `None` when it is not shown.
async fn checklist(app: &TestApp, browser: &reqwest::Client) -> Option<[bool; 4]> {
    let html = page(app, browser, "/admin").await;
    if !html.contains("id=\"setup\"") {
        for step in ["provider", "client", "login", "webhook"] {
            assert!(!html.contains(&format!("id=\"setup-{step}\"")), "{html}");
        }
        return None;
    }
    let step = |name: &str, link: &str| {
        let start = html
            .find(&format!("id=\"setup-{name}\""))
            .unwrap_or_else(|| panic!("step {name} in {html}"));
        let item = &html[start..start + html[start..].find("</li>").unwrap()];
        assert!(item.contains(&format!("href=\"{link}\"")), "{item}");
        item.contains("data-done=\"true\"")
    };
    Some([
        step("provider", "/admin/providers"),
        step("client", "/admin/clients"),
        step("login", "/admin/clients"),
        step("webhook", "/admin/webhooks"),
    ])
}

async fn the_dashboard_checklist_ticks_each_step_until_all_are_done(db: &TestDb) {
    let standin = GoogleStandIn::start(Account::default()).await;
    let app = spawn_app(db).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let token = api_token(&app, "setup").await;
    let t = Some(token.as_str());
    assert_eq!(checklist(&app, &browser).await, Some([false; 4]));

    let provider = json!({
        "id": "google",
        "kind": "google",
        "display_name": "Google",
        "client_id": google::CLIENT_ID,
        "client_secret": google::CLIENT_SECRET,
        "issuer": standin.issuer,
    });
    json_of(
        call(&app, Method::POST, t, "/providers", Some(provider)).await,
        201,
    )
    .await;
    assert_eq!(
        checklist(&app, &browser).await,
        Some([true, false, false, false])
    );

    let new_client = json!({
        "client_id": "first-app",
        "name": "My first app",
        "type": "confidential",
        "redirect_uris": [REDIRECT],
        "scopes": ["openid", "email"],
    });
    let created = json_of(
        call(&app, Method::POST, t, "/clients", Some(new_client)).await,
        201,
    )
    .await;
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        checklist(&app, &browser).await,
        Some([true, true, false, false])
    );

    // A real login through the stand-in Google, as the new app's user.
    let rp = relying_party(&app, "first-app", Some(&secret), REDIRECT).await;
    let (arrival, _, _) = login_at(&app, &rp, "google", &["email"]).await;
    let arrived = arrival.url();
    assert!(param(&arrived, "code").is_some(), "{arrived}");
    assert_eq!(
        checklist(&app, &browser).await,
        Some([true, true, true, false])
    );

    let webhook = json!({
        "url": "https://hooks.example/in",
        "events": ["token.reuse_detected"],
    });
    json_of(
        call(&app, Method::POST, t, "/webhooks", Some(webhook)).await,
        201,
    )
    .await;
    // Every step done: the checklist is gone.
    assert_eq!(checklist(&app, &browser).await, None);
    app.stop();
}
