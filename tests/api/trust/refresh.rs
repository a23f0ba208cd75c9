//! Refresh chains never fork: a rotated token retried inside the grace window gets the same
//! successor, however many requests race; after the window, reuse revokes the family.

use openidconnect::OAuth2TokenResponse;

use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::Upstream;

on_both_backends!(concurrent_refreshes_of_one_token_make_one_successor);

async fn refresh(app: &TestApp, token: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = post_form(
        app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await;
    (status, body)
}

async fn concurrent_refreshes_of_one_token_make_one_successor(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |_| {}).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(
        &rp,
        authorize(&app, &rp, REDIRECT, &["offline_access"]).await,
    )
    .await;
    let first = tokens.refresh_token().unwrap().secret().clone();

    // Ten refreshes of one token at once: one successor, given to all of them.
    let answers = futures_util::future::join_all((0..10).map(|_| refresh(&app, &first))).await;
    let mut successors: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    successors.dedup();
    assert_eq!(successors.len(), 1, "the chain forked: {successors:?}");
    let successor = successors.remove(0);
    assert_eq!(family_of(&app, &first).await.len(), 2, "one successor row");
    assert!(events(&app, "token.reuse_detected").await.is_empty());

    // A retry inside the window: the identical token again.
    let (status, body) = refresh(&app, &first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["refresh_token"], successor.as_str());
    // The successor works, and rotates in turn.
    let (status, body) = refresh(&app, &successor).await;
    assert_eq!(status, 200, "{body}");
    let third = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(third, successor);

    // After the window, presenting the first token again is reuse: the family is revoked.
    sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = rotated_at - 3600 WHERE rotated_at IS NOT NULL",
    )
    .execute(app.state.store.pool())
    .await
    .unwrap();
    let (status, body) = refresh(&app, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(events(&app, "token.reuse_detected").await.len(), 1);
    let family = family_of(&app, &first).await;
    assert_eq!(family.len(), 3);
    assert!(
        family.iter().all(|(_, revoked)| revoked.is_some()),
        "a member of the family survived: {family:?}"
    );
    let (status, _) = refresh(&app, &third).await;
    assert_eq!(status, 400);
    app.stop();
}
