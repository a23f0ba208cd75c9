//! Spawning Portico for a test: a fresh database per test, a random master key, port 0.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::web;
use portico::config::{DatabaseUrl, Issuer, Settings};
use portico::crypto::MasterKey;
use portico::startup::Application;
use portico::state::AppState;
use secrecy::SecretString;
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "PORTICO_TEST_POSTGRES_URL";
/// Set (by CI) when every PostgreSQL test must run.
pub const REQUIRE_POSTGRES_ENV: &str = "PORTICO_TEST_REQUIRE_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test; `cleanup` removes it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: PathBuf,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database, or `None` (with a message) when PostgreSQL is wanted but not configured.
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir =
            std::env::temp_dir().join(format!("portico-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match backend {
            Backend::Sqlite => Some(Self {
                backend,
                url: format!("sqlite://{}", dir.join("portico.db").display()),
                dir,
                pg: None,
            }),
            Backend::Postgres => {
                let Ok(admin) = std::env::var(POSTGRES_ENV) else {
                    // CI sets this: there, a PostgreSQL test that cannot run fails.
                    assert!(
                        std::env::var_os(REQUIRE_POSTGRES_ENV).is_none(),
                        "{REQUIRE_POSTGRES_ENV} is set but {POSTGRES_ENV} is not"
                    );
                    eprintln!("skipping a PostgreSQL test: set {POSTGRES_ENV} to run it");
                    return None;
                };
                let name = format!("portico_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to the PostgreSQL test server");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                conn.close().await.ok();
                let mut url = url::Url::parse(&admin).expect("valid PostgreSQL URL");
                url.set_path(&name);
                Some(Self {
                    backend,
                    url: url.to_string(),
                    dir,
                    pg: Some((admin, name)),
                })
            }
        }
    }

    /// A store of its own on this database, for reading it while no app runs (or after one
    /// has stopped: an app's own pool closes with it).
    pub async fn store(&self) -> portico::store::Store {
        let url = DatabaseUrl::parse(&self.url).expect("test database URL");
        portico::store::Store::connect(&url, 2)
            .await
            .expect("connect to the test database")
    }

    pub async fn cleanup(self) {
        if let Some((admin, name)) = &self.pg
            && let Ok(mut conn) = sqlx::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Settings a test app starts from: the database, a fresh key, quiet logs, port 0.
pub fn test_settings(db: &TestDb, master_key: &MasterKey) -> Settings {
    let mut settings = Settings::default();
    settings.database.url = Some(DatabaseUrl::parse(&db.url).expect("test database URL"));
    settings.database.max_connections = 5;
    settings.secrets.master_key = Some(SecretString::from(master_key.to_base64()));
    settings.server.data_dir = db.dir.clone();
    settings.server.workers = 1;
    settings.server.shutdown_grace_secs = 1;
    settings.keys.refresh_secs = 1;
    settings
}

/// The user agent of the test browser (`TestApp::client`), as events record it.
pub const BROWSER_USER_AGENT: &str = "portico-test-browser/1.0";

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub state: web::Data<AppState>,
    pub client: reqwest::Client,
    pub master_key: MasterKey,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Tells the app to stop as SIGTERM would (its listener closes, then its background tasks
    /// and pool), without waiting for it: the end of a test.
    pub fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
    }

    /// Stops the app and waits until it has: nothing of it (server, dispatcher, janitor, key
    /// rotation, pool) runs any more. Tests that start again on the same database use this.
    pub async fn shut_down(self) {
        self.stop();
        tokio::time::timeout(std::time::Duration::from_secs(15), self.server)
            .await
            .expect("the app stops within 15 s")
            .expect("the app's task ends")
            .expect("the app stops cleanly");
    }
}

/// Spawns Portico on `db` with the default test settings.
pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_app_with(db, MasterKey::generate(), |_| {}).await
}

/// Spawns Portico on `db` with `master_key`, after `customize` has adjusted the settings.
pub async fn spawn_app_with(
    db: &TestDb,
    master_key: MasterKey,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    try_spawn_app_with(db, master_key, customize)
        .await
        .expect("Portico starts")
}

pub async fn try_spawn_app_with(
    db: &TestDb,
    master_key: MasterKey,
    customize: impl FnOnce(&mut Settings),
) -> anyhow::Result<TestApp> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");
    let mut settings = test_settings(db, &master_key);
    settings.server.issuer = Issuer::parse(&address).unwrap();
    customize(&mut settings);
    let app = Application::build_on(settings, listener).await?;
    let state = app.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .user_agent(BROWSER_USER_AGENT)
        .build()
        .unwrap();
    Ok(TestApp {
        address,
        port,
        state,
        client,
        master_key,
        server,
        stop: std::sync::Mutex::new(Some(stop)),
    })
}

/// The `portico` binary with no `PORTICO_*` variables from the test's environment.
pub fn portico_command(db: &TestDb, master_key: &MasterKey) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portico"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PORTICO_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(&db.dir)
        .env("PORTICO_DATABASE_URL", &db.url)
        .env("PORTICO_MASTER_KEY", master_key.to_base64())
        .env("PORTICO_LOG", "warn")
        .stdin(std::process::Stdio::null());
    cmd
}

/// Declares `sqlite` and `postgres` tests that run `$name(TestDb)` on each back end.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    if let Some(db) = $crate::helpers::TestDb::new($crate::helpers::Backend::Sqlite).await {
                        super::$name(&db).await;
                        db.cleanup().await;
                    }
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(db) = $crate::helpers::TestDb::new($crate::helpers::Backend::Postgres).await {
                        super::$name(&db).await;
                        db.cleanup().await;
                    }
                }
            }
        )*
    };
}
