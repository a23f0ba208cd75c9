use crate::helpers::{TestDb, spawn_app, spawn_app_with};
use crate::on_both_backends;
use portico::config::Issuer;
use portico::crypto::MasterKey;

on_both_backends!(health_and_readiness_answer, discovery_names_the_issuer);

async fn health_and_readiness_answer(db: &TestDb) {
    let app = spawn_app(db).await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    // Readiness follows the database: a closed pool is not ready.
    app.state.store.close().await;
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop();
}

async fn discovery_names_the_issuer(db: &TestDb) {
    let app = spawn_app(db).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/json");
        let doc: serde_json::Value = res.json().await.unwrap();
        assert_eq!(doc["issuer"], app.address);
        assert_eq!(doc["jwks_uri"], format!("{}/jwks.json", app.address));
    }
    app.stop();
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    for path in ["/healthz", "/jwks.json", "/no-such-page"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(h.get("x-request-id").is_some(), "{path}");
        // The issuer is plain http here, so HSTS would be wrong.
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }
    app.stop();

    let db2 = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app_with(&db2, MasterKey::generate(), |s| {
        s.server.issuer = Issuer::parse("https://id.example.com").unwrap();
    })
    .await;
    let res = app.get("/healthz").await;
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    app.stop();
    db.cleanup().await;
    db2.cleanup().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    app.get("/jwks.json").await;
    app.get("/nothing/here/12345").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = res.text().await.unwrap();
    assert!(
        body.contains(r#"http_requests_total{method="GET",route="/jwks.json",status="200"}"#),
        "{body}"
    );
    assert!(
        body.contains("http_request_duration_seconds_bucket"),
        "{body}"
    );
    // Unknown paths share one label instead of one series per path.
    assert!(body.contains(r#"route="unmatched""#), "{body}");
    assert!(!body.contains("12345"), "{body}");
    app.stop();
    db.cleanup().await;
}

#[tokio::test]
async fn oversized_request_targets_and_headers_are_refused() {
    let db = TestDb::new(crate::helpers::Backend::Sqlite).await.unwrap();
    let app = spawn_app(&db).await;
    let authorize = |query_len: usize| {
        app.url(&format!(
            "/authorize?client_id=x&response_type=code&state={}",
            "a".repeat(query_len)
        ))
    };
    // A 20 kB /authorize query is refused before any handler runs, and so is 9 KiB.
    for len in [20_000, 9 * 1024] {
        let res = app.client.get(authorize(len)).send().await.unwrap();
        assert_eq!(res.status(), 414, "{len}");
    }
    // Just under the cap it reaches the handler (which refuses the unknown client).
    let res = app.client.get(authorize(7 * 1024)).send().await.unwrap();
    assert_ne!(res.status(), 414);

    // One 20 kB header, then more header lines than allowed.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-padding", "p".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
    let mut req = app.client.get(app.url("/healthz"));
    for i in 0..70 {
        req = req.header(format!("x-h{i}"), "v");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    // Ordinary requests are untouched.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop();
    db.cleanup().await;
}
