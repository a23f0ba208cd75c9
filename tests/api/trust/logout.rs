//! Logout CSRF: a plain `GET /logout` from another site must not end the user's session.
//! Without a valid `id_token_hint` for the signed-in user, Portico asks, and ends the session
//! only on the confirmation form's POST with its CSRF token.

use openidconnect::TokenResponse;

use crate::helpers::{TestApp, TestDb};
use crate::oidc::prompt_none_url;
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::{UpUser, Upstream};

use super::browser;

on_both_backends!(
    logout_without_a_valid_hint_asks_first,
    logout_with_the_users_id_token_hint_ends_the_session_at_once,
);

async fn signed_in(app: &TestApp) -> bool {
    let arrived = browse(app, &prompt_none_url(app), REDIRECT).await.url();
    param(&arrived, "code").is_some()
}

/// The value of the hidden `csrf` input of a page.
fn csrf_of(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a csrf field") + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

async fn logout_without_a_valid_hint_asks_first(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let _ = authorize(&app, &rp, REDIRECT, &[]).await;
    assert!(signed_in(&app).await);

    // An <img src="https://portico/logout"> on any page: a confirmation, nothing ended.
    let res = app.get("/logout").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<form") && page.contains(r#"method="post""#),
        "{page}"
    );
    assert!(
        signed_in(&app).await,
        "a GET without a hint ended the session"
    );
    assert!(events(&app, "session.ended").await.is_empty());

    // With a post_logout_redirect_uri and client_id but no hint: still a question, which
    // carries them on.
    let res = app
        .get(&format!(
            "/logout?client_id={CLIENT_ID}&post_logout_redirect_uri={}&state=st",
            url::form_urlencoded::byte_serialize(POST_LOGOUT.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(signed_in(&app).await);

    // A forged POST: no token, or another browser's token, ends nothing.
    let res = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // The stranger is signed in too, so their page carries a token of their own.
    let stranger = browser();
    let url = start_url(&rp, &[]);
    let _ = browse_with(&stranger, &app, url.as_str(), REDIRECT)
        .await
        .url();
    let stranger_page = stranger
        .get(app.url("/logout"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", csrf_of(&stranger_page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(signed_in(&app).await);

    // The user confirms: the session ends and the browser returns to the app with state.
    let res = app
        .client
        .post(app.url("/logout"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("client_id", CLIENT_ID),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "st"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("{POST_LOGOUT}?state=st")
    );
    assert!(!signed_in(&app).await);
    let ended = events(&app, "session.ended").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "logout");

    // The form cannot send the user to an unregistered address.
    let _ = authorize(&app, &rp, REDIRECT, &[]).await;
    let page = app.get("/logout").await.text().await.unwrap();
    let res = app
        .client
        .post(app.url("/logout"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("client_id", CLIENT_ID),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(signed_in(&app).await);
    app.stop();
}

async fn logout_with_the_users_id_token_hint_ends_the_session_at_once(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;

    // Someone else's ID token (the attacker's own) is no licence to sign the victim out.
    upstream.login_as(UpUser::new("mallory", "mallory@corp.example"));
    let attacker = browser();
    let (url, _, nonce, verifier) = start(&rp, &[], &[]);
    let arrived = browse_with(&attacker, &app, url.as_str(), REDIRECT)
        .await
        .url();
    let (tokens, _) = exchange(
        &rp,
        Authorized {
            code: param(&arrived, "code").unwrap(),
            nonce,
            verifier,
        },
    )
    .await;
    let attackers_hint = tokens.id_token().unwrap().to_string();

    upstream.login_as(UpUser::new("victim", "victim@corp.example"));
    let (tokens, _) = exchange(&rp, authorize(&app, &rp, REDIRECT, &[]).await).await;
    let victims_hint = tokens.id_token().unwrap().to_string();

    let res = app
        .get(&format!("/logout?id_token_hint={attackers_hint}"))
        .await;
    assert_eq!(res.status(), 200, "asks instead");
    assert!(signed_in(&app).await);

    // The user's own hint: the RP asked, the session ends at once.
    let res = app
        .get(&format!("/logout?id_token_hint={victims_hint}"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(!signed_in(&app).await);
    app.stop();
}
