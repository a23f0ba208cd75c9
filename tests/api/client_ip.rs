//! The client address: the TCP peer, or what a trusted proxy forwarded; one value that the rate
//! limits, the admin throttle and the audit log all use.

use std::net::IpAddr;

use portico::crypto::MasterKey;

use crate::admin::{create_admin, sign_in_form};
use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(forwarded_for_counts_only_from_trusted_proxies);

/// A client whose connections come from `source` (a loopback alias).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A failed admin sign-in from `client`, claiming `xff`; the address the audit log recorded.
async fn audited_ip(app: &TestApp, client: &reqwest::Client, xff: &str, email: &str) -> String {
    let csrf = sign_in_form(app, client).await;
    let res = client
        .post(app.url("/admin/sign-in"))
        .header("x-forwarded-for", xff)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", "wrong wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    sqlx::query_scalar(
        "SELECT ip FROM audit_log WHERE action = 'admin.sign_in_failed' AND actor = $1",
    )
    .bind(email)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap()
}

/// `/token` from `client` claiming `xff`: whether the per-IP limit refused it.
async fn token_limited(app: &TestApp, client: &reqwest::Client, xff: &str) -> bool {
    let res = client
        .post(app.url("/token"))
        .header("x-forwarded-for", xff)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    res.status() == 429
}

async fn forwarded_for_counts_only_from_trusted_proxies(db: &TestDb) {
    let app = spawn_app_with(db, MasterKey::generate(), |s| {
        s.server.trusted_proxies =
            portico::ops::client_ip::TrustedProxies::parse(["127.0.0.2", "10.0.0.0/8"]).unwrap();
        s.admin.delay_base_ms = 0;
        s.oidc.rate_limit.per_ip_per_sec = 1;
        s.oidc.rate_limit.per_ip_burst = 1;
        s.oidc.rate_limit.per_client_per_sec = 1000;
        s.oidc.rate_limit.per_client_burst = 1000;
    })
    .await;
    create_admin(&app).await;
    let proxy = client_from("127.0.0.2");
    let stranger = client_from("127.0.0.3");

    // From an untrusted peer the header is ignored: the peer is the client.
    let ip = audited_ip(&app, &stranger, "198.51.100.7", "a@example.com").await;
    assert_eq!(ip, "127.0.0.3");
    // From a trusted proxy: right to left, past trusted hops, to the first untrusted address.
    let ip = audited_ip(
        &app,
        &proxy,
        "203.0.113.1, 198.51.100.9, 10.1.2.3",
        "b@example.com",
    )
    .await;
    assert_eq!(ip, "198.51.100.9");

    // The per-IP rate limit keys on the same address: two clients behind the proxy have a
    // bucket each; the same client twice is limited; the stranger cannot pick a fresh bucket.
    assert!(!token_limited(&app, &proxy, "192.0.2.10").await);
    assert!(!token_limited(&app, &proxy, "192.0.2.11").await);
    assert!(token_limited(&app, &proxy, "192.0.2.10").await);
    assert!(!token_limited(&app, &stranger, "192.0.2.20").await);
    assert!(token_limited(&app, &stranger, "192.0.2.21").await);
    app.stop();
}
