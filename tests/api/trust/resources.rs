//! Resource indicators (RFC 8707): a client gets tokens only for the resources an admin
//! allowed it. Any other `resource`, at `/authorize` or at `/token` for any grant, is
//! `invalid_target`.

use portico::clients::ClientConfig;

use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::Upstream;

on_both_backends!(
    authorize_refuses_a_resource_the_client_may_not_name,
    every_grant_refuses_a_resource_the_client_may_not_name,
);

const API: &str = "https://api.example.com";
const EVIL: &str = "https://evil.example/steal";

/// The test clients, `app` allowed to ask for tokens to `API`.
fn clients_with_resources() -> Vec<ClientConfig> {
    let mut clients = clients();
    clients[0] = toml::from_str(&format!(
        r#"
client_id = "{CLIENT_ID}"
name = "The App"
type = "confidential"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT}"]
post_logout_redirect_uris = ["{POST_LOGOUT}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scopes = ["openid", "email", "profile", "groups", "offline_access", "api:read"]
allowed_resources = ["{API}"]
"#
    ))
    .expect("clients take `allowed_resources`");
    clients
}

async fn app_with_resources(db: &TestDb, upstream: &Upstream) -> TestApp {
    spawn_portico(db, upstream, |s| s.clients = clients_with_resources()).await
}

async fn authorize_refuses_a_resource_the_client_may_not_name(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = app_with_resources(db, &upstream).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;

    let (url, csrf, ..) = start(&rp, &[], &[("resource", EVIL)]);
    let arrived = browse(&app, url.as_str(), REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("invalid_target"));
    assert_eq!(
        param(&arrived, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert!(param(&arrived, "code").is_none());

    // A public client with no allowed resources may name none.
    let spa = relying_party(&app, PUBLIC_ID, None, PUBLIC_REDIRECT).await;
    let (url, ..) = start(&spa, &[], &[("resource", API)]);
    let arrived = browse(&app, url.as_str(), PUBLIC_REDIRECT).await.url();
    assert_eq!(param(&arrived, "error").as_deref(), Some("invalid_target"));

    // The allowed one works, and is the access token's audience.
    let (url, _, nonce, verifier) = start(&rp, &[], &[("resource", API)]);
    let arrived = browse(&app, url.as_str(), REDIRECT).await.url();
    let code = param(&arrived, "code").expect("a code");
    let (tokens, _) = exchange(
        &rp,
        Authorized {
            code,
            nonce,
            verifier,
        },
    )
    .await;
    use openidconnect::OAuth2TokenResponse;
    let access = jwt_claims(tokens.access_token().secret());
    assert_eq!(access["aud"], API);
    app.stop();
}

async fn every_grant_refuses_a_resource_the_client_may_not_name(db: &TestDb) {
    let upstream = Upstream::start().await;
    let app = app_with_resources(db, &upstream).await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let basic = Some((CLIENT_ID, CLIENT_SECRET));

    // client_credentials.
    for (resource, expected) in [(EVIL, 400), (API, 200)] {
        let (status, _, body) = post_form(
            &app,
            "/token",
            basic,
            &[("grant_type", "client_credentials"), ("resource", resource)],
        )
        .await;
        assert_eq!(status, expected, "{resource}: {body}");
        if expected == 400 {
            assert_eq!(body["error"], "invalid_target");
        } else {
            assert_eq!(
                jwt_claims(body["access_token"].as_str().unwrap())["aud"],
                API
            );
        }
    }

    // authorization_code: a resource at /token that the client may not name, or that the
    // authorization did not carry.
    for resource in [EVIL, API] {
        let auth = authorize(&app, &rp, REDIRECT, &["offline_access"]).await;
        let (status, _, body) = post_form(
            &app,
            "/token",
            basic,
            &[
                ("grant_type", "authorization_code"),
                ("code", &auth.code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", auth.verifier.secret()),
                ("resource", resource),
            ],
        )
        .await;
        assert_eq!(status, 400, "{resource}: {body}");
        assert_eq!(body["error"], "invalid_target");
    }

    // refresh_token.
    let auth = authorize(&app, &rp, REDIRECT, &["offline_access"]).await;
    let (status, _, body) = post_form(
        &app,
        "/token",
        basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", &auth.code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", auth.verifier.secret()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, body) = post_form(
        &app,
        "/token",
        basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("resource", EVIL),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_target");
    app.stop();
}
