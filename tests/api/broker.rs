//! The token vault through `GET /broker/{provider}/token`: refresh of an expiring upstream
//! token, one upstream refresh for concurrent requests, rotation persisted, `invalid_grant`,
//! the scope check, and no token bytes in clear in the database file.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestDb};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::Upstream;

const BROKER: &str = "broker:read-token";

on_both_backends!(
    an_expiring_token_is_refreshed_and_the_rotated_refresh_token_persisted,
    ten_concurrent_requests_make_one_upstream_refresh,
    invalid_grant_marks_the_identity_and_serves_no_stale_token,
    a_token_without_the_broker_scope_is_refused,
    the_database_holds_no_upstream_token_in_clear,
    concurrent_downstream_refreshes_make_one_upstream_refresh,
    an_ended_upstream_grant_stops_downstream_refresh_and_sso,
    claims_younger_than_the_refresh_interval_spare_the_provider,
);

/// Portico whose confidential test client may ask for `broker:read-token`.
async fn spawn(db: &TestDb, upstream: &Upstream) -> TestApp {
    spawn_portico(db, upstream, |s| {
        s.clients[0]
            .scopes
            .as_mut()
            .expect("the test client lists its scopes")
            .push(BROKER.into());
    })
    .await
}

/// Logs in through Portico and returns a Portico access token with `scopes`.
async fn portico_token(app: &TestApp, scopes: &[&str]) -> String {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(app, &rp, REDIRECT, scopes).await;
    let (tokens, _) = exchange(&rp, auth).await;
    tokens.access_token().secret().clone()
}

/// Logs in (through the SSO session after the first time) and returns a Portico refresh token.
async fn portico_refresh_token(app: &TestApp) -> String {
    let rp = relying_party(app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let auth = authorize(app, &rp, REDIRECT, &["offline_access"]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .secret()
        .clone()
}

/// The downstream refresh grant: (status, body).
async fn refresh(app: &TestApp, refresh_token: &str) -> (u16, Value) {
    let (status, _, body) = post_form(
        app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    (status, body)
}

async fn needs_login(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT needs_login FROM identities")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

pub(crate) async fn broker(app: &TestApp, token: &str) -> (u16, Value) {
    let res = rp_http()
        .get(app.url("/broker/corp/token"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn an_expiring_token_is_refreshed_and_the_rotated_refresh_token_persisted(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    upstream.set_expires_in(30);
    let token = portico_token(&app, &[BROKER]).await;
    let login_tokens = upstream.issued_tokens();

    // Expires within 60 s: refreshed first.
    let (status, first) = broker(&app, &token).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(upstream.refresh_calls(), 1);
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["scope"], "openid email profile groups");
    let access = first["access_token"].as_str().unwrap();
    assert!(!login_tokens.iter().any(|t| t == access), "a stale token");
    let expires_at = first["expires_at"].as_i64().unwrap();
    assert!((expires_at - portico::store::now() - 30).abs() <= 5);

    // Still within the margin: refreshed again. The stand-in spends a refresh token when it is
    // used, so this works only if the rotated one from the first refresh was stored.
    let (status, second) = broker(&app, &token).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(upstream.refresh_calls(), 2);
    assert_ne!(second["access_token"], first["access_token"]);

    // A token with time left is served from the vault without an upstream call.
    upstream.set_expires_in(3600);
    let (_, third) = broker(&app, &token).await;
    assert_eq!(upstream.refresh_calls(), 3);
    let (status, fourth) = broker(&app, &token).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.refresh_calls(), 3);
    assert_eq!(fourth["access_token"], third["access_token"]);
    app.stop();
}

async fn ten_concurrent_requests_make_one_upstream_refresh(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    upstream.set_expires_in(30);
    let token = portico_token(&app, &[BROKER]).await;
    upstream.set_expires_in(3600);
    let calls = (0..10).map(|_| broker(&app, &token));
    let answers = futures_util::future::join_all(calls).await;
    assert_eq!(
        upstream.refresh_calls(),
        1,
        "one upstream refresh for ten requests"
    );
    let first = &answers[0].1["access_token"];
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(&body["access_token"], first);
    }
    app.stop();
}

async fn invalid_grant_marks_the_identity_and_serves_no_stale_token(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    upstream.set_expires_in(30);
    let token = portico_token(&app, &[BROKER]).await;
    upstream.revoke_refresh_tokens();
    let (status, body) = broker(&app, &token).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "login_required");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    assert!(body.get("access_token").is_none());
    let marked: i64 = sqlx::query_scalar("SELECT needs_login FROM identities")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(marked, 1);
    // Marked: the next call fails at once, without asking upstream again.
    let (status, _) = broker(&app, &token).await;
    assert_eq!(status, 409);
    assert_eq!(upstream.refresh_calls(), 1);

    // A new upstream login (the SSO session alone would not reach the provider) clears it.
    upstream.set_expires_in(3600);
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new(BROKER.into()))
        .add_extra_param("prompt", "login")
        .url();
    let arrived = browse(&app, url.as_str(), REDIRECT).await.url();
    let code = param(&arrived, "code").unwrap();
    let auth = Authorized {
        code,
        nonce,
        verifier,
    };
    let token = exchange(&rp, auth).await.0.access_token().secret().clone();
    let (status, body) = broker(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    app.stop();
}

async fn a_token_without_the_broker_scope_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    let token = portico_token(&app, &["email"]).await;
    let res = rp_http()
        .get(app.url("/broker/corp/token"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let no_bearer = rp_http()
        .get(app.url("/broker/corp/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_bearer.status(), 401);
    let (status, body) = broker(&app, "not-a-jwt").await;
    assert_eq!(
        (status, &body["error"]),
        (401, &Value::from("invalid_token"))
    );
    assert_eq!(upstream.refresh_calls(), 0);
    app.stop();
}

async fn the_database_holds_no_upstream_token_in_clear(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    upstream.set_expires_in(30);
    let token = portico_token(&app, &[BROKER]).await;
    let (status, _) = broker(&app, &token).await;
    assert_eq!(status, 200);
    let issued = upstream.issued_tokens();
    assert_eq!(issued.len(), 6, "a login and a refresh, three tokens each");
    match db.backend {
        Backend::Sqlite => {
            let mut raw = Vec::new();
            for name in ["portico.db", "portico.db-wal"] {
                if let Ok(bytes) = std::fs::read(db.dir.join(name)) {
                    raw.extend(bytes);
                }
            }
            assert!(raw.len() > 4096, "the database file was read");
            for t in &issued {
                // A JWT's parts are checked too: its payload alone would leak the claims.
                for piece in std::iter::once(t.as_str()).chain(t.split('.')) {
                    assert!(
                        !contains(&raw, piece.as_bytes()),
                        "an upstream token is in the database file in clear"
                    );
                }
            }
        }
        Backend::Postgres => {
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT encode(convert_to(i::text, 'UTF8'), 'escape') || \
                 encode(coalesce(access_token, ''::bytea) || coalesce(refresh_token, ''::bytea) \
                 || coalesce(id_token, ''::bytea) || coalesce(token_meta, ''::bytea), 'escape') \
                 FROM identities i",
            )
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
            assert_eq!(rows.len(), 1);
            for t in &issued {
                for piece in std::iter::once(t.as_str()).chain(t.split('.')) {
                    assert!(
                        !rows[0].contains(piece),
                        "an upstream token is stored in clear"
                    );
                }
            }
        }
    }
    app.stop();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A downstream refresh asks the provider for fresh claims, under the same lease as the
/// broker: ten at once (ten families of one user) spend the upstream refresh token once.
async fn concurrent_downstream_refreshes_make_one_upstream_refresh(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(portico_refresh_token(&app).await);
    }
    assert_eq!(upstream.refresh_calls(), 0);
    // A slow provider holds the ten together.
    upstream.set_refresh_delay_ms(400);
    let answers = futures_util::future::join_all(tokens.iter().map(|t| refresh(&app, t))).await;
    assert_eq!(
        upstream.refresh_calls(),
        1,
        "one upstream refresh for ten downstream refreshes"
    );
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert!(body["id_token"].is_string(), "{body}");
        assert!(body["refresh_token"].is_string(), "{body}");
    }
    // One at a time, each downstream refresh refreshes upstream (fresh groups, dex#1065).
    upstream.set_refresh_delay_ms(0);
    let next = answers[0].1["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&app, next).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.refresh_calls(), 2);
    app.stop();
}

/// `invalid_grant` upstream during a downstream refresh: the refresh fails with
/// `invalid_grant`, the identity is marked, other refresh tokens of the user fail without
/// asking upstream, and the SSO session no longer answers `/authorize` silently.
async fn an_ended_upstream_grant_stops_downstream_refresh_and_sso(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn(db, &upstream).await;
    let first = portico_refresh_token(&app).await;
    let second = portico_refresh_token(&app).await;
    upstream.revoke_refresh_tokens();

    let (status, body) = refresh(&app, &first).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    assert_eq!(needs_login(&app).await, 1);
    assert_eq!(upstream.refresh_calls(), 1);

    let (status, body) = refresh(&app, &second).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        upstream.refresh_calls(),
        1,
        "marked: no second upstream call"
    );

    // The browser still holds a live SSO session, but it cannot answer without the provider.
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let url = start_url(&rp, &[("prompt", "none")]);
    let arrived = browse(&app, url.as_str(), REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("login_required"));

    // Without prompt=none the browser goes through the provider again, which clears the mark.
    let issued_before = upstream.issued_tokens().len();
    let fresh = portico_refresh_token(&app).await;
    assert!(
        upstream.issued_tokens().len() > issued_before,
        "a new upstream login"
    );
    assert_eq!(needs_login(&app).await, 0);
    let (status, body) = refresh(&app, &fresh).await;
    assert_eq!(status, 200, "{body}");
    app.stop();
}

async fn claims_younger_than_the_refresh_interval_spare_the_provider(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| {
        s.oidc.upstream_refresh_interval_secs = 3600;
    })
    .await;
    let token = portico_refresh_token(&app).await;
    let (status, body) = refresh(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        upstream.refresh_calls(),
        0,
        "claims from the login are fresh"
    );

    // An hour later the claims are due, and the next refresh asks the provider.
    sqlx::query("UPDATE identities SET updated_at = updated_at - 7200")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let (status, body) = refresh(&app, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.refresh_calls(), 1);
    app.stop();
}
