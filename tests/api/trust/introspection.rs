//! Introspection answers `active: true` only to the client a token was issued to or a client
//! its audience names, and agrees with `/userinfo` about revoked and disabled users.

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use portico::clients::ClientConfig;
use reqwest::Method;

use crate::admin::{api_token, call, json_of};
use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::Upstream;

on_both_backends!(
    introspection_answers_only_the_client_or_the_audience,
    introspection_agrees_with_userinfo_on_ended_sessions_and_disabled_users,
);

const API: &str = "https://api.example.com";
const API_SECRET: &str = "api-secret-0123456789abcdef0123456789";
const OTHER: &str = "other";
const OTHER_SECRET: &str = "other-secret-0123456789abcdef01234567";

fn more_clients() -> Vec<ClientConfig> {
    let mut clients = clients();
    let confidential = |id: &str, secret: &str, extra: &str| -> ClientConfig {
        toml::from_str(&format!(
            r#"
client_id = "{id}"
type = "confidential"
client_secret = "{secret}"
grant_types = ["client_credentials"]
scopes = ["api:read"]
{extra}
"#
        ))
        .unwrap()
    };
    clients.push(confidential(OTHER, OTHER_SECRET, ""));
    clients.push(confidential(API, API_SECRET, ""));
    clients[0] = toml::from_str(&format!(
        r#"
client_id = "{CLIENT_ID}"
type = "confidential"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scopes = ["openid", "email", "profile", "offline_access", "api:read"]
allowed_resources = ["{API}"]
"#
    ))
    .expect("clients take `allowed_resources`");
    clients
}

/// Introspects `token` as client `who` (client_secret_post: an id with `:` would need
/// form-encoding inside HTTP Basic).
async fn active(app: &TestApp, who: (&str, &str), token: &str) -> bool {
    let form = [
        ("token", token),
        ("client_id", who.0),
        ("client_secret", who.1),
    ];
    let (status, _, body) = post_form(app, "/introspect", None, &form).await;
    assert_eq!(status, 200, "{body}");
    body["active"].as_bool().unwrap()
}

async fn client_token(app: &TestApp, resource: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let (status, _, body) = post_form(app, "/token", Some((CLIENT_ID, CLIENT_SECRET)), &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn introspection_answers_only_the_client_or_the_audience(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| s.clients = more_clients()).await;
    let own = (CLIENT_ID, CLIENT_SECRET);
    let other = (OTHER, OTHER_SECRET);
    let api = (API, API_SECRET);

    let token = client_token(&app, None).await;
    assert!(active(&app, own, &token).await);
    assert!(
        !active(&app, other, &token).await,
        "a stranger learned about another client's token"
    );
    assert!(!active(&app, api, &token).await);

    // A token for the API: its audience may introspect it; strangers still may not.
    let token = client_token(&app, Some(API)).await;
    assert!(active(&app, own, &token).await);
    assert!(active(&app, api, &token).await);
    assert!(!active(&app, other, &token).await);

    // Refresh tokens: only their own client.
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let (tokens, _) = exchange(
        &rp,
        authorize(&app, &rp, REDIRECT, &["offline_access"]).await,
    )
    .await;
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    assert!(active(&app, own, &refresh).await);
    assert!(!active(&app, other, &refresh).await);
    app.stop();
}

async fn introspection_agrees_with_userinfo_on_ended_sessions_and_disabled_users(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = spawn_portico(db, &upstream, |s| s.clients = more_clients()).await;
    let own = (CLIENT_ID, CLIENT_SECRET);
    let admin = api_token(&app, "trust").await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let log_in = || async {
        let (tokens, _) = exchange(&rp, authorize(&app, &rp, REDIRECT, &[]).await).await;
        let user = jwt_claims(&tokens.id_token().unwrap().to_string())["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        (user, tokens.access_token().secret().clone())
    };

    let (user, access) = log_in().await;
    assert!(active(&app, own, &access).await);
    assert_eq!(userinfo_status(&app, &access).await, 200);

    // "Sign out everywhere": the access tokens already out die with the sessions.
    let ended = call(
        &app,
        Method::DELETE,
        Some(&admin),
        &format!("/users/{user}/sessions"),
        None,
    )
    .await;
    json_of(ended, 200).await;
    assert_eq!(userinfo_status(&app, &access).await, 401);
    assert!(
        !active(&app, own, &access).await,
        "introspection called a token of ended sessions active"
    );

    // A token minted after that works, even within the same second.
    let (_, access) = log_in().await;
    assert!(active(&app, own, &access).await);
    assert_eq!(userinfo_status(&app, &access).await, 200);

    // Disabling the user: inactive everywhere.
    let disabled = call(
        &app,
        Method::POST,
        Some(&admin),
        &format!("/users/{user}/disable"),
        None,
    )
    .await;
    json_of(disabled, 200).await;
    assert_eq!(userinfo_status(&app, &access).await, 401);
    assert!(!active(&app, own, &access).await);
    app.stop();
}
