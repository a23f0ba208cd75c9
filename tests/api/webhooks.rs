//! Webhooks end to end: events recorded in a transaction reach a real HTTP receiver, which
//! checks the signatures with the Standard Webhooks algorithm written out here (not Portico's).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portico::admin::Caller;
use portico::admin::http::pagination::{Cursor, PageRequest};
use portico::admin::webhooks::service::{self as webhooks_admin, DeliveryQuery};
use portico::config::Settings;
use portico::crypto::MasterKey;
use portico::webhooks::events::{self, EventType};
use portico::webhooks::{
    Dispatcher, EndpointUpdate, HumanDuration, ManagedEndpoint, NewEndpoint, WebhookError,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    a_login_through_portico_arrives_as_login_succeeded,
    a_committed_login_arrives_signed,
    a_rolled_back_transaction_delivers_nothing,
    retries_until_the_receiver_recovers,
    gone_disables_the_endpoint,
    retry_after_is_honoured,
    redirects_are_not_followed,
    a_dropped_dispatcher_leaves_the_delivery_to_the_next,
    two_dispatchers_deliver_each_event_once,
    failed_deliveries_replay_and_pings_arrive,
    a_rotated_secret_signs_beside_the_old_one,
    endpoints_declared_in_config_are_managed,
    an_endpoint_failing_too_long_is_disabled_and_audited,
);

// ---- The receiver -----------------------------------------------------------------------------

/// What the receiver answers, in order; after the script it answers 200.
#[derive(Clone)]
pub(crate) enum Reply {
    Status(u16),
    WithHeader(u16, &'static str, String),
    Hang(Duration),
}

#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
    pub(crate) at: Instant,
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    elsewhere: Mutex<usize>,
}

pub(crate) struct Receiver {
    base: String,
    state: Arc<ReceiverState>,
    _server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub(crate) async fn start(script: Vec<Reply>) -> Self {
        let state = Arc::new(ReceiverState::default());
        state.script.lock().unwrap().extend(script);
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hook", web::post().to(hook))
                .route("/elsewhere", web::to(elsewhere))
        })
        .workers(2)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            state,
            _server: handle,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub(crate) async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= count || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn hook(req: HttpRequest, body: String, state: web::Data<ReceiverState>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    state.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        at: Instant::now(),
    });
    let reply = state.script.lock().unwrap().pop_front();
    let status = |code: u16| actix_web::http::StatusCode::from_u16(code).unwrap();
    match reply {
        None => HttpResponse::Ok().body("thanks"),
        Some(Reply::Status(code)) => HttpResponse::build(status(code)).body("x".repeat(3000)),
        Some(Reply::WithHeader(code, name, value)) => HttpResponse::build(status(code))
            .insert_header((name, value))
            .finish(),
        Some(Reply::Hang(d)) => {
            tokio::time::sleep(d).await;
            HttpResponse::Ok().finish()
        }
    }
}

async fn elsewhere(state: web::Data<ReceiverState>) -> HttpResponse {
    *state.elsewhere.lock().unwrap() += 1;
    HttpResponse::Ok().finish()
}

/// Standard Webhooks verification, written from the spec: base64 HMAC-SHA256 over
/// `{id}.{timestamp}.{body}`, keyed with the base64-decoded part of the secret after `whsec_`;
/// the header lists space-separated `v1,<signature>` entries.
pub(crate) fn signed_with(secret: &str, r: &Received) -> bool {
    let key_bytes = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    assert!(key_bytes.len() >= 24, "at least 24 bytes of key");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let content = format!("{}.{}.{}", r.id, r.timestamp, r.body);
    let expected = STANDARD.encode(ring::hmac::sign(&key, content.as_bytes()).as_ref());
    r.signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected)
}

// ---- Helpers ----------------------------------------------------------------------------------

pub(crate) fn fast(settings: &mut Settings, schedule: &[&str]) {
    let w = &mut settings.webhooks;
    w.allow_private_targets = true;
    w.retry_schedule = schedule
        .iter()
        .map(|s| HumanDuration::parse(s).unwrap())
        .collect();
    w.retry_jitter = 0.0;
    w.poll_interval = HumanDuration::parse("10ms").unwrap();
    w.attempt_timeout = HumanDuration::parse("5s").unwrap();
    w.lease = HumanDuration::parse("10s").unwrap();
}

async fn app_with(db: &TestDb, customize: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(db, MasterKey::generate(), customize).await
}

async fn endpoint(app: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let new = NewEndpoint {
        url: url.to_owned(),
        events: events.iter().map(|e| e.to_string()).collect(),
        enabled: true,
        description: "test receiver".into(),
    };
    let created = webhooks_admin::create(&app.state, &Caller::cli(), new)
        .await
        .unwrap();
    (created.webhook.id, created.secret)
}

/// Records an event in its own committed transaction, as the login code does.
async fn record(app: &TestApp, event_type: EventType, data: Value) -> String {
    let mut tx = app.state.store.pool().begin().await.unwrap();
    let event = events::record(&mut tx, event_type, data).await.unwrap();
    tx.commit().await.unwrap();
    event.id
}

fn login_data() -> Value {
    json!({
        "user_id": "usr_1", "provider": "github", "client_id": "app", "email": "ada@example.com",
        "ip": "203.0.113.9", "user_agent": "test", "new_user": false
    })
}

/// Waits until the endpoint's newest delivery has left `pending`.
async fn settled(
    app: &TestApp,
    endpoint_id: &str,
    within: Duration,
) -> portico::webhooks::Delivery {
    let deadline = Instant::now() + within;
    loop {
        let list = app
            .state
            .webhooks
            .deliveries(endpoint_id, None, None, 50)
            .await
            .unwrap();
        if let Some(d) = list.first()
            && (d.status != "pending" || Instant::now() > deadline)
        {
            return d.clone();
        }
        assert!(Instant::now() < deadline, "no delivery appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

// ---- Tests ------------------------------------------------------------------------------------

/// End to end: a browser logs in through Portico at an upstream OIDC provider, and the
/// receiver gets the `login.succeeded` event the callback recorded, signed.
async fn a_login_through_portico_arrives_as_login_succeeded(db: &TestDb) {
    use crate::oidc_support::{
        CLIENT_ID, CLIENT_SECRET, REDIRECT, authorize, relying_party, spawn_portico,
    };
    let receiver = Receiver::start(vec![]).await;
    let upstream = crate::upstream_idp::Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| fast(s, &["10ms"])).await;
    let (_, secret) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    authorize(&app, &rp, REDIRECT, &["email"]).await;

    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the login's event arrived");
    assert!(signed_with(&secret, &got[0]));
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "login.succeeded");
    let data = &body["data"];
    assert_eq!(data["provider"], "corp");
    assert_eq!(data["client_id"], CLIENT_ID);
    assert_eq!(data["new_user"], true);
    assert!(
        data["user_id"].as_str().is_some_and(|u| !u.is_empty()),
        "{data}"
    );
    for field in ["email", "ip", "user_agent"] {
        assert!(data.get(field).is_some(), "{field} in {data}");
    }
    app.stop();
}

async fn a_committed_login_arrives_signed(db: &TestDb) {
    let receiver = Receiver::start(vec![]).await;
    let other = Receiver::start(vec![]).await;
    let app = app_with(db, |s| fast(s, &["10ms"])).await;
    let (id, secret) = endpoint(&app, &receiver.url(), &["login.succeeded", "user.created"]).await;
    endpoint(&app, &other.url(), &["session.ended"]).await;

    let event_id = record(&app, EventType::LoginSucceeded, login_data()).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the login event arrived");
    let r = &got[0];
    assert_eq!(r.id, event_id, "webhook-id is the event id");
    assert!(
        signed_with(&secret, r),
        "signature verifies: {}",
        r.signature
    );
    assert!(
        !signed_with(&other_secret(), r),
        "a wrong secret does not verify"
    );
    let ts: i64 = r.timestamp.parse().unwrap();
    assert!((ts - portico::store::now()).abs() <= 5, "timestamp is now");
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["type"], "login.succeeded");
    assert_eq!(body["data"], login_data());
    chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).unwrap();

    let delivery = settled(&app, &id, Duration::from_secs(5)).await;
    assert_eq!(delivery.status, "succeeded");
    assert_eq!(delivery.event_id, event_id);
    let attempts = app.state.webhooks.attempts(&id, delivery.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(200));
    assert_eq!(attempts[0].response_body.as_deref(), Some("thanks"));
    assert!(attempts[0].latency_ms >= 0 && attempts[0].error.is_none());

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        other.received().is_empty(),
        "an unsubscribed endpoint gets nothing"
    );
    assert!(
        app.get("/metrics")
            .await
            .text()
            .await
            .unwrap()
            .contains("webhook_deliveries_total")
    );
}

fn other_secret() -> String {
    portico::webhooks::WebhookSecret::generate()
        .expose()
        .to_owned()
}

async fn a_rolled_back_transaction_delivers_nothing(db: &TestDb) {
    let receiver = Receiver::start(vec![]).await;
    let app = app_with(db, |s| fast(s, &[])).await;
    endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    let mut tx = app.state.store.pool().begin().await.unwrap();
    events::record(&mut tx, EventType::LoginSucceeded, login_data())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty());
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM webhook_deliveries").await,
        0
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM events").await, 0);
}

async fn retries_until_the_receiver_recovers(db: &TestDb) {
    let receiver = Receiver::start(vec![
        Reply::Status(500),
        Reply::Status(502),
        Reply::Status(500),
    ])
    .await;
    let app = app_with(db, |s| fast(s, &["50ms", "50ms", "50ms", "50ms"])).await;
    let (id, secret) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    let event_id = record(&app, EventType::LoginSucceeded, login_data()).await;

    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 4, "three failures, then the success");
    assert!(
        got.iter().all(|r| r.id == event_id),
        "same webhook-id on every attempt"
    );
    assert!(got.iter().all(|r| signed_with(&secret, r)));
    for pair in got.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(45),
            "the schedule's delay"
        );
    }
    let delivery = settled(&app, &id, Duration::from_secs(5)).await;
    assert_eq!(delivery.status, "succeeded");
    let attempts = app.state.webhooks.attempts(&id, delivery.id).await.unwrap();
    let codes: Vec<_> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(502), Some(500), Some(200)]);
    assert_eq!(
        attempts[0].response_body.as_ref().unwrap().len(),
        1024,
        "first KB kept"
    );
    assert_eq!(attempts[0].error.as_deref(), Some("HTTP 500"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 4, "nothing after the success");
}

async fn gone_disables_the_endpoint(db: &TestDb) {
    let receiver = Receiver::start(vec![Reply::Status(410)]).await;
    let app = app_with(db, |s| fast(s, &["10ms", "10ms"])).await;
    let (id, _) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    record(&app, EventType::LoginSucceeded, login_data()).await;

    let delivery = settled(&app, &id, Duration::from_secs(10)).await;
    assert_eq!(delivery.status, "failed", "410 ends the delivery at once");
    assert_eq!(receiver.received().len(), 1);
    let endpoint = app.state.webhooks.get(&id).await.unwrap();
    assert!(!endpoint.enabled);
    assert!(endpoint.disabled_reason.unwrap().contains("410"));
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'webhook.endpoint_disabled' AND target = $1",
    )
    .bind(&id)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // A disabled endpoint gets no new deliveries, and replay asks for it to be enabled first.
    record(&app, EventType::LoginSucceeded, login_data()).await;
    let list = app
        .state
        .webhooks
        .deliveries(&id, None, None, 50)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(matches!(
        webhooks_admin::replay(&app.state, &Caller::cli(), &id, delivery.id).await,
        Err(WebhookError::EndpointDisabled)
    ));
}

async fn retry_after_is_honoured(db: &TestDb) {
    let receiver = Receiver::start(vec![
        Reply::WithHeader(503, "retry-after", "1".into()),
        Reply::WithHeader(429, "retry-after", "1".into()),
    ])
    .await;
    let app = app_with(db, |s| fast(s, &["10ms", "10ms"])).await;
    let (id, _) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    record(&app, EventType::LoginSucceeded, login_data()).await;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    for pair in got.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(950),
            "waited for Retry-After, not the 10 ms schedule: {:?}",
            pair[1].at - pair[0].at
        );
    }
    assert_eq!(
        settled(&app, &id, Duration::from_secs(5)).await.status,
        "succeeded"
    );
}

async fn redirects_are_not_followed(db: &TestDb) {
    let location = |r: &Receiver| format!("{}/elsewhere", r.base);
    let receiver = Receiver::start(vec![]).await;
    let target = location(&receiver);
    receiver.state.script.lock().unwrap().extend([
        Reply::WithHeader(307, "location", target.clone()),
        Reply::WithHeader(302, "location", target),
    ]);
    let app = app_with(db, |s| fast(s, &["10ms"])).await;
    let (id, _) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    record(&app, EventType::LoginSucceeded, login_data()).await;
    let delivery = settled(&app, &id, Duration::from_secs(10)).await;
    assert_eq!(delivery.status, "failed", "a redirect is not a success");
    assert_eq!(delivery.last_status_code, Some(302));
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(
        *receiver.state.elsewhere.lock().unwrap(),
        0,
        "never followed"
    );
}

async fn a_dropped_dispatcher_leaves_the_delivery_to_the_next(db: &TestDb) {
    let receiver = Receiver::start(vec![Reply::Hang(Duration::from_secs(30))]).await;
    let app = app_with(db, |s| {
        fast(s, &["10ms"]);
        s.webhooks.dispatcher = false;
        s.webhooks.attempt_timeout = HumanDuration::parse("2s").unwrap();
        s.webhooks.lease = HumanDuration::parse("3s").unwrap();
    })
    .await;
    let (id, secret) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    let settings = Arc::new(app.state.settings.webhooks.clone());
    let dispatcher = |_: ()| {
        Dispatcher::new(
            app.state.store.clone(),
            app.state.sealer.clone(),
            settings.clone(),
        )
        .unwrap()
        .spawn()
    };
    let event_id = record(&app, EventType::LoginSucceeded, login_data()).await;

    let first = dispatcher(());
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the first dispatcher is mid-delivery");
    drop(first); // dies with the attempt in flight

    let second = dispatcher(());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "the lease still holds the delivery"
    );
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "delivered once the lease ran out");
    assert_eq!(got[0].id, event_id);
    assert_eq!(got[1].id, event_id, "the same webhook-id");
    assert!(signed_with(&secret, &got[1]));
    assert!(got[1].at - got[0].at >= Duration::from_millis(2500));
    let delivery = settled(&app, &id, Duration::from_secs(5)).await;
    assert_eq!(delivery.status, "succeeded");
    assert_eq!(delivery.attempts, 2, "the attempt that died counts");
    second.shutdown().await;
}

async fn two_dispatchers_deliver_each_event_once(db: &TestDb) {
    const EVENTS: usize = 40;
    let receiver = Receiver::start(vec![]).await;
    let a = app_with(db, |s| fast(s, &["10ms"])).await;
    let b = spawn_app_with(db, a.master_key.clone(), |s| fast(s, &["10ms"])).await;
    let (id, secret) = endpoint(&a, &receiver.url(), &["login.succeeded"]).await;
    let mut ids = Vec::new();
    for i in 0..EVENTS {
        let app = if i % 2 == 0 { &a } else { &b };
        ids.push(record(app, EventType::LoginSucceeded, login_data()).await);
    }
    let got = receiver.wait_for(EVENTS, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = receiver.received();
    assert_eq!(got.len(), EVENTS);
    assert_eq!(got_after.len(), EVENTS, "no event was sent twice");
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for r in &got_after {
        assert!(signed_with(&secret, r));
        *per_id.entry(r.id.as_str()).or_default() += 1;
    }
    assert!(ids.iter().all(|i| per_id.get(i.as_str()) == Some(&1)));
    let succeeded = count(
        &a,
        "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'succeeded' AND attempts = 1",
    )
    .await;
    assert_eq!(succeeded, EVENTS as i64);
    let attempts = count(&a, "SELECT COUNT(*) FROM webhook_attempts").await;
    assert_eq!(attempts, EVENTS as i64, "one attempt each");
    let _ = id;
}

async fn failed_deliveries_replay_and_pings_arrive(db: &TestDb) {
    let receiver = Receiver::start(vec![Reply::Status(500), Reply::Status(500)]).await;
    let app = app_with(db, |s| fast(s, &[])).await;
    let (id, secret) = endpoint(&app, &receiver.url(), &["user.created"]).await;
    let since = portico::store::now();
    let first = record(&app, EventType::UserCreated, json!({"user_id": "u1"})).await;
    let delivery = settled(&app, &id, Duration::from_secs(10)).await;
    assert_eq!(
        delivery.status, "failed",
        "one attempt, no retries in this schedule"
    );
    assert_eq!(delivery.last_status_code, Some(500));
    record(&app, EventType::UserCreated, json!({"user_id": "u2"})).await;
    receiver.wait_for(2, Duration::from_secs(10)).await;
    settled(&app, &id, Duration::from_secs(10)).await;
    let failed = app
        .state
        .webhooks
        .deliveries(&id, Some("failed"), None, 50)
        .await
        .unwrap();
    assert_eq!(failed.len(), 2);

    // Replay one, then all failed since the start: each arrives with its original webhook-id.
    let replayed = webhooks_admin::replay(&app.state, &Caller::cli(), &id, delivery.id)
        .await
        .unwrap();
    assert_eq!(replayed.status, "pending");
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got[2].id, first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        webhooks_admin::replay_failed_since(&app.state, &Caller::cli(), &id, since)
            .await
            .unwrap(),
        1,
        "only the one still failed"
    );
    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| signed_with(&secret, r)));

    // A test ping goes to this endpoint as `webhook.test`.
    let ping = webhooks_admin::test_ping(&app.state, &Caller::cli(), &id)
        .await
        .unwrap();
    assert_eq!(ping.event_type, "webhook.test");
    let got = receiver.wait_for(5, Duration::from_secs(10)).await;
    let body: Value = serde_json::from_str(&got[4].body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(got[4].id, ping.event_id);

    // Pagination walks the log newest first.
    let page_of = |cursor: Option<String>| {
        let page = PageRequest {
            limit: 2,
            cursor: cursor.as_deref().and_then(Cursor::decode),
        };
        let query = DeliveryQuery { status: None, page };
        let (state, id) = (app.state.clone(), id.clone());
        async move {
            webhooks_admin::deliveries(&state, &id, &query)
                .await
                .unwrap()
        }
    };
    let page = page_of(None).await;
    assert_eq!(page.items.len(), 2);
    assert!(page.items[0].id > page.items[1].id);
    let rest = page_of(page.next_cursor).await;
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next_cursor.is_none());
}

async fn a_rotated_secret_signs_beside_the_old_one(db: &TestDb) {
    let receiver = Receiver::start(vec![]).await;
    let app = app_with(db, |s| fast(s, &[])).await;
    let (id, old) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    let new = webhooks_admin::rotate_secret(&app.state, &Caller::cli(), &id)
        .await
        .unwrap()
        .secret;
    assert_ne!(new, old);
    webhooks_admin::test_ping(&app.state, &Caller::cli(), &id)
        .await
        .unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].signature.split(' ').count(),
        2,
        "two signatures during the overlap"
    );
    assert!(signed_with(&new, &got[0]) && signed_with(&old, &got[0]));

    // Secrets are stored sealed, never in clear.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
        .bind(&id)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("whsec_"));
}

async fn endpoints_declared_in_config_are_managed(db: &TestDb) {
    let receiver = Receiver::start(vec![]).await;
    let secret = portico::webhooks::WebhookSecret::generate()
        .expose()
        .to_owned();
    let declared = ManagedEndpoint {
        id: "crm".into(),
        url: receiver.url(),
        events: vec!["login.succeeded".into()],
        enabled: true,
        description: "CRM".into(),
        secret: Some(SecretString::from(secret.clone())),
    };
    let key = MasterKey::generate();
    let app = spawn_app_with(db, key.clone(), |s| {
        fast(s, &[]);
        s.webhooks.endpoints = vec![declared.clone()];
    })
    .await;
    let listed = app.state.webhooks.list(None, 50).await.unwrap();
    assert_eq!(listed.len(), 1);
    let endpoint = &listed[0];
    assert!(endpoint.managed && endpoint.enabled);
    assert_eq!(endpoint.events, ["login.succeeded"]);
    assert!(matches!(
        webhooks_admin::update(
            &app.state,
            &Caller::cli(),
            "crm",
            EndpointUpdate {
                enabled: Some(false),
                ..Default::default()
            }
        )
        .await,
        Err(WebhookError::ManagedByConfig)
    ));
    assert!(matches!(
        webhooks_admin::delete(&app.state, &Caller::cli(), "crm").await,
        Err(WebhookError::ManagedByConfig)
    ));
    record(&app, EventType::LoginSucceeded, login_data()).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        signed_with(&secret, &got[0]),
        "signed with the declared secret"
    );
    app.stop();
    // Let the stopped instance's tasks wind down: this test is about the restart, not about
    // two instances side by side.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A second start with the endpoint gone from the file deletes it.
    let app = spawn_app_with(db, key, |s| fast(s, &[])).await;
    assert!(app.state.webhooks.list(None, 50).await.unwrap().is_empty());
}

async fn an_endpoint_failing_too_long_is_disabled_and_audited(db: &TestDb) {
    let receiver = Receiver::start(vec![Reply::Status(500); 20]).await;
    let app = app_with(db, |s| {
        fast(s, &["100ms"; 10]);
        s.webhooks.disable_after = HumanDuration::parse("300ms").unwrap();
    })
    .await;
    let (id, _) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    record(&app, EventType::LoginSucceeded, login_data()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.webhooks.get(&id).await.unwrap().enabled {
        assert!(Instant::now() < deadline, "the endpoint was not disabled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let endpoint = app.state.webhooks.get(&id).await.unwrap();
    assert!(endpoint.disabled_reason.unwrap().contains("failed"));
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'webhook.endpoint_disabled'"
        )
        .await,
        1
    );
    let delivery = settled(&app, &id, Duration::from_secs(5)).await;
    assert_eq!(delivery.status, "failed", "its pending delivery ends");
    let sent = receiver.received().len();
    assert!((3..10).contains(&sent), "stopped early: {sent}");

    // Enabling it again through the service clears the failure run.
    let change = EndpointUpdate {
        enabled: Some(true),
        ..Default::default()
    };
    let enabled = webhooks_admin::update(&app.state, &Caller::cli(), &id, change)
        .await
        .unwrap();
    assert!(enabled.enabled && enabled.disabled_reason.is_none());
}

#[tokio::test]
async fn private_targets_are_refused_with_the_guard_on() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let receiver = Receiver::start(vec![]).await;
    let app = app_with(&db, |s| {
        fast(s, &["10ms"]);
        s.webhooks.allow_private_targets = false;
    })
    .await;
    let cli = Caller::cli();
    let create = |url: String| {
        let new = NewEndpoint {
            url,
            events: vec!["login.succeeded".into()],
            enabled: true,
            description: String::new(),
        };
        webhooks_admin::create(&app.state, &cli, new)
    };
    let err = create(receiver.url()).await.unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
    for literal in [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://127.0.0.1/hook",
        "https://100.64.1.1/hook",
        "https://[fd00:ec2::254]/",
    ] {
        let err = create(literal.into()).await.unwrap_err();
        assert!(matches!(err, WebhookError::BadUrl(_)), "{literal}: {err}");
    }

    // A name is checked after resolution, at send time: `localhost` resolves to loopback.
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    let endpoint = create(format!("https://localhost:{port}/hook"))
        .await
        .unwrap()
        .webhook;
    record(&app, EventType::LoginSucceeded, login_data()).await;
    let delivery = settled(&app, &endpoint.id, Duration::from_secs(10)).await;
    assert_eq!(delivery.status, "failed");
    let attempts = app
        .state
        .webhooks
        .attempts(&endpoint.id, delivery.id)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert!(a.status_code.is_none());
        assert!(
            a.error.as_deref().unwrap().contains("non-public address"),
            "{a:?}"
        );
    }
    assert!(receiver.received().is_empty(), "no request left Portico");
    // Counted as refused by the guard, not as a network error.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("webhook_attempts_total") && l.contains(r#"result="refused""#)),
        "{metrics}"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn oversized_events_are_cut_or_refused() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = app_with(&db, |s| fast(s, &[])).await;
    let mut tx = app.state.store.pool().begin().await.unwrap();
    // One long free-text field is cut, so the change that reports it still commits.
    let event = events::record(
        &mut tx,
        EventType::LoginFailed,
        json!({ "reason": "é".repeat(20 * 1024), "provider": "github" }),
    )
    .await
    .unwrap();
    assert!(event.body.len() <= 20 * 1024);
    let body: Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(body["data"]["provider"], "github");
    assert!(body["data"]["reason"].as_str().unwrap().ends_with('…'));
    // Data that is large without any long string is refused.
    let many: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("field_{i}"), Value::String("x".repeat(400))))
        .collect();
    let err = events::record(&mut tx, EventType::LoginFailed, Value::Object(many))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("20 KB"), "{err}");
    db.cleanup().await;
}

/// Shutdown lets an attempt in flight finish and be written.
#[tokio::test]
async fn shutdown_lets_attempts_in_flight_finish() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let receiver = Receiver::start(vec![Reply::Hang(Duration::from_millis(700))]).await;
    let app = app_with(&db, |s| {
        fast(s, &["10ms"]);
        s.webhooks.dispatcher = false;
    })
    .await;
    let (id, _) = endpoint(&app, &receiver.url(), &["login.succeeded"]).await;
    let dispatcher = Dispatcher::new(
        app.state.store.clone(),
        app.state.sealer.clone(),
        Arc::new(app.state.settings.webhooks.clone()),
    )
    .unwrap()
    .spawn();
    record(&app, EventType::LoginSucceeded, login_data()).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let stopping = Instant::now();
    dispatcher.shutdown().await;
    assert!(
        stopping.elapsed() >= Duration::from_millis(500),
        "it waited"
    );
    let delivery = app
        .state
        .webhooks
        .deliveries(&id, None, None, 50)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        delivery.status, "succeeded",
        "written before the dispatcher ended"
    );
    assert_eq!(delivery.attempts, 1);
    db.cleanup().await;
}
