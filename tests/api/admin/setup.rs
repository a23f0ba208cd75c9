//! Setting up a fresh instance: `portico admin create` says which database it wrote to.

use portico::crypto::MasterKey;

use super::PASSWORD;
use super::cli::admin_create;
use crate::helpers::{Backend, TestDb, portico_command};

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
