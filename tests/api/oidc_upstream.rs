//! The generic OIDC connector against a misbehaving upstream, and account linking.

use openidconnect::TokenResponse;

use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::{Misbehave, UpUser, Upstream};

on_both_backends!(
    bad_upstream_id_tokens_are_refused,
    a_callback_with_a_forged_state_is_refused,
    unverified_email_is_not_linked_and_verified_email_is,
);

/// Starts an authorization and returns where the browser ends up at the client.
async fn try_login(app: &TestApp, rp: &Rp) -> Arrival {
    let url = start_url(rp, &[]);
    browse(app, url.as_str(), REDIRECT).await
}

async fn bad_upstream_id_tokens_are_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let cases = [
        (Misbehave::WrongIssuer, "issuer"),
        (Misbehave::WrongAudience, "audience"),
        (Misbehave::Expired, "xpired"),
        (Misbehave::UnknownKey, "ignature"),
        (Misbehave::AlgNone, ""),
        (Misbehave::WrongNonce, "once"),
    ];
    for (how, word) in cases {
        upstream.misbehave(how);
        let (status, arrived) = try_login(&app, &rp).await.failure();
        assert_eq!(status, 502, "{how:?}");
        assert_eq!(
            param(&arrived, "error").as_deref(),
            Some("access_denied"),
            "{how:?}"
        );
        let failed = events(&app, "login.failed").await;
        assert_eq!(failed.len(), 1, "{how:?}");
        let reason = failed[0]["reason"].as_str().unwrap();
        assert!(reason.contains("ID token is invalid"), "{how:?}: {reason}");
        assert!(reason.contains(word), "{how:?}: {reason}");
        assert_eq!(failed[0]["provider"], "corp");
        assert_eq!(failed[0]["client_id"], CLIENT_ID);
        sqlx::query("DELETE FROM events WHERE type = 'login.failed'")
            .execute(app.state.store.pool())
            .await
            .unwrap();
    }
    assert!(events(&app, "login.succeeded").await.is_empty());
    // The same upstream behaving again lets the user in.
    upstream.misbehave(Misbehave::Nothing);
    let arrived = try_login(&app, &rp).await.url();
    assert!(param(&arrived, "code").is_some());
    app.stop();
}

async fn a_callback_with_a_forged_state_is_refused(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let res = app.get("/callback/corp?code=abc&state=forged-state").await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    let failed = events(&app, "login.failed").await;
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("state mismatch")
    );

    // A real callback replayed after it was used finds nothing either.
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let url = start_url(&rp, &[]);
    let callback = browse(&app, url.as_str(), &app.url("/callback/"))
        .await
        .url();
    let first = app.client.get(callback.as_str()).send().await.unwrap();
    assert_eq!(first.status(), 302);
    let replay = app.client.get(callback.as_str()).send().await.unwrap();
    assert_eq!(replay.status(), 400);

    // A callback taken to another browser (no login cookie) is refused.
    let url = start_url(&rp, &[("prompt", "login")]);
    let callback = browse(&app, url.as_str(), &app.url("/callback/"))
        .await
        .url();
    let other_browser = rp_http().get(callback.as_str()).send().await.unwrap();
    assert_eq!(other_browser.status(), 400);
    app.stop();
}

async fn unverified_email_is_not_linked_and_verified_email_is(db: &TestDb) {
    let upstream = Upstream::start().await;
    let issuer = upstream.issuer.clone();
    let app = spawn_portico(db, &upstream, move |s| {
        s.providers = vec![
            provider("corp", &issuer, true),
            provider("corp2", &issuer, true),
            provider("corp3", &issuer, true),
        ];
    })
    .await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let login_at = |provider: &'static str| {
        let rp = &rp;
        let app = &app;
        async move {
            let (url, _, nonce, verifier) = start(
                rp,
                &["email"],
                &[("provider", provider), ("prompt", "login")],
            );
            let arrived = browse(app, url.as_str(), REDIRECT).await.url();
            let code = param(&arrived, "code").unwrap_or_else(|| panic!("{arrived}"));
            let auth = Authorized {
                code,
                nonce,
                verifier,
            };
            let (tokens, _) = exchange(rp, auth).await;
            jwt_claims(&tokens.id_token().unwrap().to_string())["sub"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // Alice, verified, at corp: a new user.
    upstream.login_as(UpUser::new("alice-sub", "alice@corp.example"));
    let alice = login_at("corp").await;
    // The same address, unverified, at corp2: not linked, a separate user.
    upstream.login_as(UpUser {
        email_verified: false,
        ..UpUser::new("mallory-sub", "alice@corp.example")
    });
    let mallory = login_at("corp2").await;
    assert_ne!(alice, mallory, "an unverified e-mail was linked");
    assert!(events(&app, "identity.linked").await.is_empty());
    // Verified at corp3 (trust_email): linked to Alice.
    upstream.login_as(UpUser::new("alice-at-3", "alice@corp.example"));
    let linked = login_at("corp3").await;
    assert_eq!(linked, alice);
    let links = events(&app, "identity.linked").await;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["user_id"], alice.as_str());
    assert_eq!(links[0]["provider"], "corp3");
    assert_eq!(events(&app, "user.created").await.len(), 2);
    app.stop();
}
