//! Faults an operator meets: the database going away and coming back, a SQLite write lock held
//! by another process, and (with the real `portico` binary) SIGTERM under load and SIGKILL in
//! the middle of work. Each test prints what it measured (`--nocapture` shows it); the figures
//! are in docs/operations-faults.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portico::crypto::MasterKey;
use portico::webhooks::HumanDuration;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::admin::api_token;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::oidc_support::{CLIENT_ID, CLIENT_SECRET, REDIRECT, clients};
use crate::webhooks::{Receiver, Reply, fast};

// ---- A TCP proxy the test can cut ------------------------------------------------------------

/// Forwards connections to `upstream` until cut; while cut, it closes every forwarded
/// connection and accepts new ones without ever answering (a network that drops packets: the
/// worst case for a client, which sees no refusal, only silence). `restore` forwards again.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    silent: Arc<Mutex<Vec<TcpStream>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let silent: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = tokio::spawn({
            let (cut, links, silent) = (cut.clone(), links.clone(), silent.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        silent.lock().unwrap().push(inbound);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    let mut links = links.lock().unwrap();
                    links.retain(|l| !l.is_finished());
                    links.push(link.abort_handle());
                }
            }
        })
        .abort_handle();
        Self {
            port,
            cut,
            links,
            silent,
            accept,
        }
    }

    /// Closes every connection through the proxy; new ones hang.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.silent.lock().unwrap().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

// ---- Helpers ---------------------------------------------------------------------------------

async fn client_credentials(app: &TestApp) -> (u16, Value, Duration) {
    let started = Instant::now();
    let res = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "api:read")])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").cloned();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status == 503 {
        assert!(retry_after.is_some(), "a 503 says when to retry");
    }
    (status, body, started.elapsed())
}

/// An admin API call with `token`; a JSON body makes it a POST.
async fn admin(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, Duration) {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let req = match body {
        Some(body) => http.post(app.url(path)).json(&body),
        None => http.get(app.url(path)),
    };
    let res = req
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

/// `/authorize` as a browser opens it: a page that needs the database (the client's record).
async fn authorize_page(app: &TestApp) -> (u16, String, String, Duration) {
    let started = Instant::now();
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/authorize"))
        .query(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
            ("nonce", "n"),
        ])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer");
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap(), started.elapsed())
}

async fn ready(app: &TestApp) -> u16 {
    match reqwest::Client::new()
        .get(app.url("/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(res) => res.status().as_u16(),
        Err(_) => 0,
    }
}

/// How long until `/readyz` answers `want`, polling every 50 ms, at most `within`.
async fn readiness_becomes(app: &TestApp, want: u16, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if ready(app).await == want {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn new_client(id: &str) -> Value {
    json!({
        "client_id": id,
        "name": "Made before the outage",
        "type": "confidential",
        "redirect_uris": ["https://app.example.com/cb"],
        "grant_types": ["client_credentials"],
        "scopes": ["api:read"]
    })
}

// ---- The database goes away ------------------------------------------------------------------

/// PostgreSQL behind a proxy that is cut, then restored: readiness drops within 2 s, requests
/// that need the database fail fast with a 503 in each face's format, and after the restore
/// Portico recovers without a restart, having lost nothing, and delivers a webhook event
/// committed before the outage.
#[tokio::test]
async fn postgres_outage_fails_fast_and_recovers() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let mut url = url::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    url.set_port(Some(proxy.port)).unwrap();
    let proxied = url.to_string();

    let receiver = Receiver::start(vec![Reply::Status(503)]).await;
    let app = spawn_app_with(&db, MasterKey::generate(), |s| {
        s.database.url = Some(portico::config::DatabaseUrl::parse(&proxied).unwrap());
        s.clients = clients();
        fast(s, &["1s"]);
        s.webhooks.lease = HumanDuration::parse("6s").unwrap();
    })
    .await;
    let token = api_token(&app, "faults").await;

    // Before: everything works; a client is created and a webhook event is committed (its
    // first attempt is refused, so it is still pending when the database goes away).
    assert_eq!(ready(&app).await, 200);
    assert_eq!(client_credentials(&app).await.0, 200);
    let (status, body, _) = admin(
        &app,
        &token,
        "/admin/api/v1/clients",
        Some(new_client("kept")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, hook, _) = admin(
        &app,
        &token,
        "/admin/api/v1/webhooks",
        Some(json!({"url": receiver.url(), "events": ["login.succeeded"], "enabled": true})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let (status, body, _) = admin(
        &app,
        &token,
        &format!("/admin/api/v1/webhooks/{hook_id}/test"),
        Some(json!({})),
    )
    .await;
    assert!(status < 300, "{status} {body}");
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).await.len(), 1);

    // The cut.
    proxy.cut();
    let cut_at = Instant::now();
    let to_503 = readiness_becomes(&app, 503, Duration::from_secs(10))
        .await
        .expect("readiness reports the outage");
    assert!(to_503 <= Duration::from_secs(2), "/readyz took {to_503:?}");

    let ((status, body, token_took), (admin_status, admin_body, admin_took), page) = tokio::join!(
        client_credentials(&app),
        admin(&app, &token, "/admin/api/v1/clients", None),
        authorize_page(&app)
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(admin_status, 503, "{admin_body}");
    assert_eq!(
        admin_body["error"], "temporarily_unavailable",
        "{admin_body}"
    );
    let (status, kind, page, page_took) = page;
    assert_eq!(status, 503, "{page}");
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(page.contains("Temporarily unavailable"), "{page}");
    for took in [token_took, admin_took, page_took] {
        assert!(took < Duration::from_secs(5), "a request took {took:?}");
    }
    let outage = cut_at.elapsed();

    // The restore: no restart.
    proxy.restore();
    let restored_at = Instant::now();
    let to_200 = readiness_becomes(&app, 200, Duration::from_secs(20))
        .await
        .expect("readiness recovers");
    let (status, body, _) = client_credentials(&app).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = admin(&app, &token, "/admin/api/v1/clients/kept", None).await;
    assert_eq!(
        status, 200,
        "the client made before the outage is there: {body}"
    );
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(
        got.len(),
        2,
        "the pending event is delivered after the outage"
    );
    assert_eq!(got[0].id, got[1].id);
    let delivered_after = restored_at.elapsed();

    eprintln!(
        "FIGURES postgres outage: /readyz 503 after {to_503:?}; during the outage /token {token_took:?}, \
         admin API {admin_took:?}, /authorize page {page_took:?} (all 503); outage lasted {outage:?}; \
         /readyz 200 {to_200:?} after the restore; webhook delivered by {delivered_after:?} after it"
    );
    app.stop();
    drop(proxy);
    db.cleanup().await;
}

// ---- SQLite: a write lock held by another process --------------------------------------------

/// Another connection (the CLI, a backup, an operator's `sqlite3`) holds the write lock: a
/// write waits `busy_timeout` and is answered 503, reads go on, and once the lock is released
/// the same write succeeds.
#[tokio::test]
async fn a_held_sqlite_write_lock_is_a_503_after_busy_timeout() {
    use sqlx::Connection;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = spawn_app_with(&db, MasterKey::generate(), |s| {
        s.clients = clients();
        s.database.busy_timeout_ms = 1000;
    })
    .await;
    let token = api_token(&app, "faults").await;
    let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    let (status, body, write_took) = admin(
        &app,
        &token,
        "/admin/api/v1/clients",
        Some(new_client("blocked")),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(
        write_took >= Duration::from_millis(900),
        "it waited: {write_took:?}"
    );
    assert!(write_took < Duration::from_secs(5), "{write_took:?}");
    // Reads are not blocked (WAL): readiness and client_credentials still answer.
    assert_eq!(ready(&app).await, 200);
    let (status, body, _) = client_credentials(&app).await;
    assert_eq!(status, 200, "{body}");

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    let (status, body, _) = admin(
        &app,
        &token,
        "/admin/api/v1/clients",
        Some(new_client("blocked")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    eprintln!(
        "FIGURES sqlite write lock: a write answered 503 after {write_took:?} (busy_timeout 1 s)"
    );
    app.stop();
    db.cleanup().await;
}
