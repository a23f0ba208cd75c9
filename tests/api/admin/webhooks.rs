//! `/admin/api/v1/webhooks` and `/admin/webhooks`: the secret shown once, a test ping and a
//! replay reaching a real receiver and showing in the delivery log, health, audit entries,
//! config-managed endpoints read-only, 401/403/404/409/422, escaping and CSRF refusal.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::{api_token, audit_count, create_admin, csrf_in, page, revoked_api_token, signed_in};
use super::{call, error, json_of};
use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::on_both_backends;
use crate::webhooks::{Receiver, Reply, fast, signed_with};
use portico::config::Settings;
use portico::crypto::MasterKey;
use secrecy::SecretString;

on_both_backends!(
    webhooks_are_created_pinged_replayed_and_deleted,
    webhook_errors_are_401_403_404_409_422,
    the_webhooks_pages_create_ping_replay_and_delete,
);

/// Portico delivering fast (one attempt, no retries) to loopback receivers, with the
/// endpoint `crm` declared in the configuration.
pub(super) async fn spawn(
    db: &TestDb,
    crm_url: &str,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let crm_url = crm_url.to_owned();
    spawn_app_with(db, MasterKey::generate(), move |s| {
        fast(s, &[]);
        s.webhooks.endpoints = vec![
            serde_json::from_value(json!({
                "id": "crm",
                "url": crm_url,
                "events": ["user.created"],
            }))
            .unwrap(),
        ];
        customize(s);
    })
    .await
}

/// Polls the API until the delivery has left `pending`.
async fn settled(app: &TestApp, token: &str, id: &str, delivery: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let path = format!("/webhooks/{id}/deliveries/{delivery}");
        let d = json_of(call(app, Method::GET, Some(token), &path, None).await, 200).await;
        if d["status"] != "pending" {
            return d;
        }
        assert!(Instant::now() < deadline, "the delivery never settled: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn audit_details(app: &TestApp, action: &str) -> String {
    sqlx::query_scalar("SELECT details FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

async fn webhooks_are_created_pinged_replayed_and_deleted(db: &TestDb) {
    // The receiver fails the first request, then accepts.
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let app = spawn(db, "https://crm.example.com/hooks", |_| {}).await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());

    let created = json_of(
        call(
            &app,
            Method::POST,
            t,
            "/webhooks",
            Some(json!({
                "url": receiver.url(),
                "events": ["user.created", "login.succeeded", "user.created"],
                "description": "CRM sync",
            })),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(
        created["events"],
        json!(["login.succeeded", "user.created"])
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(created["managed_by_config"], false);
    assert_eq!(audit_count(&app, "webhook.created").await, 1);
    assert!(
        !audit_details(&app, "webhook.created")
            .await
            .contains(&secret)
    );

    // Reads never show the secret again.
    let shown = json_of(
        call(&app, Method::GET, t, &format!("/webhooks/{id}"), None).await,
        200,
    )
    .await;
    assert!(shown.get("secret").is_none());
    assert!(!shown.to_string().contains(&secret));
    assert_eq!(shown["health"]["last_delivery_status"], Value::Null);
    assert_eq!(shown["health"]["failed_deliveries"], 0);

    // The list pages through both endpoints, newest first; config's is marked.
    let first = json_of(
        call(&app, Method::GET, t, "/webhooks?limit=1", None).await,
        200,
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let rest = json_of(
        call(
            &app,
            Method::GET,
            t,
            &format!("/webhooks?cursor={cursor}"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(rest["next_cursor"].is_null());
    let mut ids: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["crm", id.as_str()]);

    // A test ping is a delivery in the log; the receiver's 500 fails it (no retries here).
    let ping = json_of(
        call(&app, Method::POST, t, &format!("/webhooks/{id}/test"), None).await,
        202,
    )
    .await;
    assert_eq!(ping["event_type"], "webhook.test");
    let delivery = ping["id"].as_i64().unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the ping arrived");
    assert!(signed_with(&secret, &got[0]));
    assert_eq!(got[0].id, ping["event_id"].as_str().unwrap());
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    let failed = settled(&app, &token, &id, delivery).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["last_status_code"], 500);
    assert_eq!(failed["attempt_log"][0]["status_code"], 500);
    assert_eq!(audit_count(&app, "webhook.test_sent").await, 1);

    let log = json_of(
        call(
            &app,
            Method::GET,
            t,
            &format!("/webhooks/{id}/deliveries"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(log["items"][0]["id"], delivery);
    assert_eq!(log["items"][0]["attempts"], 1);
    let none = json_of(
        call(
            &app,
            Method::GET,
            t,
            &format!("/webhooks/{id}/deliveries?status=succeeded"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(none["items"], json!([]));
    let health = json_of(
        call(&app, Method::GET, t, &format!("/webhooks/{id}"), None).await,
        200,
    )
    .await["health"]
        .clone();
    assert_eq!(health["last_delivery_status"], "failed");
    assert_eq!(health["last_status_code"], 500);
    assert_eq!(health["failed_deliveries"], 1);

    // Replay: the same webhook-id again, now accepted.
    let replayed = json_of(
        call(
            &app,
            Method::POST,
            t,
            &format!("/webhooks/{id}/deliveries/{delivery}/retry"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(replayed["status"], "pending");
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].id, got[0].id);
    let done = settled(&app, &token, &id, delivery).await;
    assert_eq!(done["status"], "succeeded");
    let codes: Vec<i64> = done["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 200]);
    assert_eq!(audit_count(&app, "webhook.delivery_replayed").await, 1);

    // Update: new events, disabled; a disabled endpoint's deliveries are not replayed.
    let updated = json_of(
        call(
            &app,
            Method::PUT,
            t,
            &format!("/webhooks/{id}"),
            Some(json!({"url": receiver.url(), "events": ["session.ended"], "enabled": false})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["events"], json!(["session.ended"]));
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["description"], "CRM sync", "absent: unchanged");
    assert_eq!(audit_count(&app, "webhook.updated").await, 1);
    error(
        call(
            &app,
            Method::POST,
            t,
            &format!("/webhooks/{id}/deliveries/{delivery}/retry"),
            None,
        )
        .await,
        409,
        "conflict",
    )
    .await;

    // Rotate: a new secret, once.
    let rotated = json_of(
        call(
            &app,
            Method::POST,
            t,
            &format!("/webhooks/{id}/secret"),
            None,
        )
        .await,
        200,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(audit_count(&app, "webhook.secret_rotated").await, 1);
    assert!(
        !audit_details(&app, "webhook.secret_rotated")
            .await
            .contains(new_secret)
    );

    // Delete.
    let res = call(&app, Method::DELETE, t, &format!("/webhooks/{id}"), None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(audit_count(&app, "webhook.deleted").await, 1);
    error(
        call(&app, Method::GET, t, &format!("/webhooks/{id}"), None).await,
        404,
        "not_found",
    )
    .await;
    let target: String =
        sqlx::query_scalar("SELECT target FROM audit_log WHERE action = 'webhook.deleted'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(target, format!("webhook:{id}"));

    let doc: Value = app
        .get("/admin/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for path in [
        "/webhooks",
        "/webhooks/{id}/test",
        "/webhooks/{id}/deliveries",
        "/webhooks/{id}/deliveries/{delivery}/retry",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    for schema in [
        "WebhookView",
        "WebhookWithSecret",
        "DeliveryView",
        "DeliveryDetail",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

async fn webhook_errors_are_401_403_404_409_422(db: &TestDb) {
    // The SSRF guard as deployed: https and public addresses only.
    let app = spawn(db, "https://crm.example.com/hooks", |s| {
        s.webhooks.allow_private_targets = false;
        s.webhooks.endpoints[0].secret = Some(SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ));
    })
    .await;
    let token = api_token(&app, "automation").await;
    let t = Some(token.as_str());
    let good = json!({"url": "https://hooks.example.com/in", "events": ["login.failed"]});

    error(
        call(&app, Method::GET, None, "/webhooks", None).await,
        401,
        "unauthorized",
    )
    .await;
    let revoked = revoked_api_token(&app).await;
    error(
        call(
            &app,
            Method::POST,
            Some(&revoked),
            "/webhooks",
            Some(good.clone()),
        )
        .await,
        403,
        "token_revoked",
    )
    .await;

    for (method, path) in [
        (Method::GET, "/webhooks/nope"),
        (Method::DELETE, "/webhooks/nope"),
        (Method::POST, "/webhooks/nope/secret"),
        (Method::POST, "/webhooks/nope/test"),
        (Method::GET, "/webhooks/nope/deliveries"),
        (Method::GET, "/webhooks/crm/deliveries/12345"),
        (Method::POST, "/webhooks/crm/deliveries/12345/retry"),
        (Method::GET, "/webhooks/crm/deliveries/not-a-number"),
    ] {
        error(call(&app, method, t, path, None).await, 404, "not_found").await;
    }
    error(
        call(&app, Method::PUT, t, "/webhooks/nope", Some(good.clone())).await,
        404,
        "not_found",
    )
    .await;

    // 422: the SSRF guard's rules and the event types, each on its field; nothing stored.
    for (url, says) in [
        // A newcomer testing with a local receiver is told which setting allows it.
        ("http://hooks.example.com/in", "https"),
        (
            "http://hooks.example.com/in",
            "webhooks.allow_private_targets",
        ),
        ("https://127.0.0.1/in", "non-public"),
        ("https://127.0.0.1/in", "webhooks.allow_private_targets"),
        ("https://169.254.169.254/latest", "non-public"),
        ("https://[::1]/in", "non-public"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("not a url", "absolute"),
        ("", "required"),
    ] {
        let body = error(
            call(
                &app,
                Method::POST,
                t,
                "/webhooks",
                Some(json!({"url": url, "events": ["login.failed"]})),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        let message = body["fields"]["url"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{url}: {body}");
    }
    for events in [json!([]), json!(["login.nope"]), json!(["webhook.test"])] {
        let body = error(
            call(
                &app,
                Method::POST,
                t,
                "/webhooks",
                Some(json!({"url": "https://hooks.example.com/in", "events": events})),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        assert!(body["fields"]["events"].is_string(), "{body}");
    }
    let body = error(
        call(
            &app,
            Method::POST,
            t,
            "/webhooks",
            Some(
                json!({"url": "https://hooks.example.com/in", "events": ["login.failed"],
                        "description": "x".repeat(201)}),
            ),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["description"].is_string(), "{body}");
    let body = error(
        call(
            &app,
            Method::GET,
            t,
            "/webhooks/crm/deliveries?status=lost&limit=0",
            None,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["status"].is_string() && body["fields"]["limit"].is_string());
    let endpoints: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(endpoints, 1, "only the configured one");
    assert_eq!(audit_count(&app, "webhook.created").await, 0);

    // A valid update is checked the same way.
    let created = json_of(
        call(&app, Method::POST, t, "/webhooks", Some(good.clone())).await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let body = error(
        call(
            &app,
            Method::PUT,
            t,
            &format!("/webhooks/{id}"),
            Some(json!({"url": "https://10.0.0.8/x", "events": ["login.failed"]})),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["url"].is_string());

    // 409: the configured endpoint is read-only.
    error(
        call(&app, Method::PUT, t, "/webhooks/crm", Some(good.clone())).await,
        409,
        "conflict",
    )
    .await;
    error(
        call(&app, Method::DELETE, t, "/webhooks/crm", None).await,
        409,
        "conflict",
    )
    .await;
    // Its secret is set in portico.toml: rotating it here would be undone at the next start.
    error(
        call(&app, Method::POST, t, "/webhooks/crm/secret", None).await,
        409,
        "conflict",
    )
    .await;
    let crm = json_of(call(&app, Method::GET, t, "/webhooks/crm", None).await, 200).await;
    assert_eq!(crm["managed_by_config"], true);
    assert_eq!(crm["url"], "https://crm.example.com/hooks");
    assert_eq!(audit_count(&app, "webhook.updated").await, 0);
    assert_eq!(audit_count(&app, "webhook.deleted").await, 0);
    assert_eq!(audit_count(&app, "webhook.secret_rotated").await, 0);
}

/// The secret between `<code id="webhook-secret" class="secret">` and `<`.
fn shown_secret(html: &str) -> Option<String> {
    let marker = "id=\"webhook-secret\" class=\"secret\">";
    let start = html.find(marker)? + marker.len();
    Some(html[start..start + html[start..].find('<')?].to_owned())
}

async fn the_webhooks_pages_create_ping_replay_and_delete(db: &TestDb) {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn(db, &receiver.url(), |_| {}).await;
    create_admin(&app).await;
    let browser = signed_in(&app).await;
    let html = page(&app, &browser, "/admin/webhooks").await;
    assert!(html.contains("href=\"/admin/webhooks\" aria-current=\"page\""));
    assert!(html.contains("managed by config"));
    let csrf = csrf_in(&html);
    let endpoints = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_endpoints")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap()
    };

    // Without its CSRF token the form is refused and nothing is created.
    let url = receiver.url();
    let res = browser
        .post(app.url("/admin/webhooks"))
        .form(&[("url", url.as_str()), ("events", "user.created")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(endpoints().await, 1);

    // Bad input: 422, the messages next to the fields, the input kept.
    let res = browser
        .post(app.url("/admin/webhooks"))
        .form(&[("csrf", csrf.as_str()), ("url", "ftp://x.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("URL: `ftp://x.example/` is not"), "{html}");
    assert!(html.contains("Events: choose at least one event type"));
    assert!(html.contains("value=\"ftp://x.example/\""));
    assert_eq!(endpoints().await, 1);

    // Created: the secret shown this once on its reveal page, uncached; the description escaped.
    let res = browser
        .post(app.url("/admin/webhooks"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", url.as_str()),
            ("description", "<script>alert(1)</script>"),
            ("events", "user.created"),
            ("events", "login.succeeded"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(audit_count(&app, "webhook.created").await, 1);
    let id: String = sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE managed = 0")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    let reveal = format!("/admin/webhooks/{id}/secret?done=created");
    assert_eq!(res.headers()["location"], reveal.as_str());
    let res = browser.get(app.url(&reveal)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let secret = shown_secret(&html).expect("the secret is shown");
    assert!(secret.starts_with("whsec_"));
    let html = page(&app, &browser, &format!("/admin/webhooks/{id}")).await;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    let endpoint = app.state.webhooks.get(&id).await.unwrap();
    assert_eq!(endpoint.events, ["login.succeeded", "user.created"]);
    assert!(endpoint.enabled);

    // Never again.
    let html = page(&app, &browser, "/admin/webhooks").await;
    assert!(!html.contains(&secret));
    let html = page(&app, &browser, &format!("/admin/webhooks/{id}")).await;
    assert!(!html.contains(&secret));
    assert!(html.contains("id=\"edit-webhook\""));

    // A test ping: queued, delivered, and in the log with its response code.
    let res = browser
        .post(app.url(&format!("/admin/webhooks/{id}/test")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("/admin/webhooks/{id}?done=pinged").as_str()
    );
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(signed_with(&secret, &got[0]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let html = loop {
        let html = page(&app, &browser, &format!("/admin/webhooks/{id}")).await;
        if html.contains("HTTP 200") || Instant::now() > deadline {
            break html;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(html.contains("webhook.test"), "{html}");
    assert!(html.contains("HTTP 200"), "{html}");
    let delivery: i64 =
        sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(&id)
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    let replay = format!("/admin/webhooks/{id}/deliveries/{delivery}/retry");
    assert!(html.contains(&replay));
    let attempts = page(
        &app,
        &browser,
        &format!("/admin/webhooks/{id}?delivery={delivery}"),
    )
    .await;
    assert!(attempts.contains("id=\"attempts\""));
    assert!(
        attempts.contains("thanks"),
        "the receiver's answer is logged"
    );

    // Replay: refused without the CSRF token, queued with it.
    let res = browser
        .post(app.url(&replay))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 1);
    let res = browser
        .post(app.url(&replay))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].id, got[0].id);
    assert_eq!(audit_count(&app, "webhook.delivery_replayed").await, 1);

    // Edit: a bad URL comes back with its message; then other events, disabled.
    let res = browser
        .post(app.url(&format!("/admin/webhooks/{id}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", "not a url"),
            ("events", "session.ended"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("URL: `not a url`"));
    let res = browser
        .post(app.url(&format!("/admin/webhooks/{id}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("url", url.as_str()),
            ("events", "session.ended"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let endpoint = app.state.webhooks.get(&id).await.unwrap();
    assert_eq!(endpoint.events, ["session.ended"]);
    assert!(!endpoint.enabled, "an unchecked box disables");
    assert_eq!(audit_count(&app, "webhook.updated").await, 1);

    // The configured endpoint is read-only here too.
    let html = page(&app, &browser, "/admin/webhooks/crm").await;
    assert!(html.contains("declared in portico.toml"));
    assert!(!html.contains("id=\"edit-webhook\""));
    assert!(!html.contains("id=\"delete-webhook\""));
    let res = browser
        .post(app.url("/admin/webhooks/crm/delete"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(app.state.webhooks.get("crm").await.is_ok());

    // Delete, confirmed.
    let res = browser
        .post(app.url(&format!("/admin/webhooks/{id}/delete")))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/webhooks?done=deleted");
    assert_eq!(endpoints().await, 1);
    assert_eq!(audit_count(&app, "webhook.deleted").await, 1);
    let res = browser
        .get(app.url(&format!("/admin/webhooks/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
