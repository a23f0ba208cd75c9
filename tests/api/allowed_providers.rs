//! A client's allowed providers hold on every grant, not only on the chooser (as Dex fixed in
//! dex#4889): driven as an attacker holding tokens, a code or an SSO session from a provider
//! the client does not allow (or no longer allows: an admin removed it through the admin API
//! after the user signed in) would try to use them.
//!
//! The client under test, `wiki`, is created through the admin API (config clients are
//! read-only); `corp` and `other` are two providers, both served by one upstream stand-in.

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use serde_json::{Value, json};

use crate::admin::{api_token, call, json_of};
use crate::helpers::{TestApp, TestDb};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::upstream_idp::Upstream;

on_both_backends!(
    a_refresh_and_the_broker_are_refused_once_the_provider_is_removed,
    an_sso_session_from_a_provider_the_client_does_not_allow_yields_no_code,
    a_code_issued_before_the_provider_was_removed_is_not_redeemed,
    a_login_finishing_after_the_provider_was_removed_gets_no_code,
);

const WIKI: &str = "wiki";
const WIKI_REDIRECT: &str = "http://127.0.0.1:7777/wiki-cb";
const BROKER: &str = "broker:read-token";

/// Portico with providers `corp` and `other` (one stand-in behind both), the config clients
/// and `wiki`, created through the admin API allowing `corp` only.
struct Setup {
    upstream: Upstream,
    app: TestApp,
    admin: String,
    secret: String,
}

impl Setup {
    async fn new(db: &TestDb) -> Self {
        let upstream = Upstream::start().await;
        let issuer = upstream.issuer.clone();
        let app = spawn_portico(db, &upstream, move |s| {
            s.providers.push(provider("other", &issuer, false));
        })
        .await;
        let admin = api_token(&app, "automation").await;
        let created = json_of(
            call(
                &app,
                reqwest::Method::POST,
                Some(&admin),
                "/clients",
                Some(wiki(&["corp"])),
            )
            .await,
            201,
        )
        .await;
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        Self {
            upstream,
            app,
            admin,
            secret,
        }
    }

    /// The admin replaces `wiki`'s allowed providers.
    async fn allow(&self, providers: &[&str]) {
        let updated = json_of(
            call(
                &self.app,
                reqwest::Method::PUT,
                Some(&self.admin),
                "/clients/wiki",
                Some(wiki(providers)),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(updated["allowed_providers"], json!(providers));
    }

    async fn rp(&self) -> Rp {
        relying_party(&self.app, WIKI, Some(&self.secret), WIKI_REDIRECT).await
    }

    /// A token endpoint request authenticated as `wiki`: (status, body).
    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let (status, _, body) =
            post_form(&self.app, "/token", Some((WIKI, &self.secret)), form).await;
        (status, body)
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Whether `wiki` introspecting `token` hears it is active.
    async fn active(&self, token: &str) -> bool {
        let (status, _, body) = post_form(
            &self.app,
            "/introspect",
            Some((WIKI, &self.secret)),
            &[("token", token)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["active"].as_bool().unwrap()
    }

    /// The broker for `corp` with `access_token`: (status, body).
    async fn broker(&self, access_token: &str) -> (u16, Value) {
        crate::broker::broker(&self.app, access_token).await
    }
}

fn wiki(providers: &[&str]) -> Value {
    json!({
        "client_id": WIKI,
        "name": "The wiki",
        "type": "confidential",
        "redirect_uris": [WIKI_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "email", "offline_access", BROKER],
        "allowed_providers": providers,
    })
}

/// The first answer to `url` in the app's browser: (status, Location).
async fn first_hop(app: &TestApp, url: &str) -> (u16, String) {
    let res = app.client.get(url).send().await.unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), location)
}

async fn a_refresh_and_the_broker_are_refused_once_the_provider_is_removed(db: &TestDb) {
    let s = Setup::new(db).await;
    let rp = s.rp().await;
    let auth = authorize(&s.app, &rp, WIKI_REDIRECT, &["offline_access", BROKER]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    let access = tokens.access_token().secret().clone();
    let first = tokens.refresh_token().unwrap().secret().clone();

    // While corp is allowed, all of it works.
    let (status, body) = s.refresh(&first).await;
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(s.active(&refresh_token).await);
    let (status, body) = s.broker(&access).await;
    assert_eq!(status, 200, "{body}");

    // The admin removes corp from the client.
    s.allow(&["other"]).await;
    assert!(
        !s.active(&refresh_token).await,
        "introspection says what the refresh grant would do"
    );
    let upstream_calls = s.upstream.refresh_calls();
    let (status, body) = s.refresh(&refresh_token).await;
    assert_invalid_grant(status, &body);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not allowed"),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    assert_eq!(
        s.upstream.refresh_calls(),
        upstream_calls,
        "a refused refresh asks the provider nothing"
    );
    let family = family_of(&s.app, &refresh_token).await;
    assert!(
        family.iter().all(|(_, revoked)| revoked.is_some()),
        "the family is revoked: {family:?}"
    );
    // The broker refuses the access token issued before the change.
    let (status, body) = s.broker(&access).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    assert!(body.get("access_token").is_none());

    // Allowing corp again does not revive the revoked family; the broker follows the list.
    s.allow(&["corp"]).await;
    let (status, body) = s.refresh(&refresh_token).await;
    assert_invalid_grant(status, &body);
    assert!(!s.active(&refresh_token).await);
    let (status, body) = s.broker(&access).await;
    assert_eq!(status, 200, "{body}");
    s.app.stop();
}

async fn an_sso_session_from_a_provider_the_client_does_not_allow_yields_no_code(db: &TestDb) {
    let s = Setup::new(db).await;
    // An SSO session through corp, from the config client that allows every provider.
    let app_rp = relying_party(&s.app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let url = start_url(&app_rp, &[("provider", "corp")]);
    let signed_in = browse(&s.app, url.as_str(), REDIRECT).await.url();
    assert!(param(&signed_in, "code").is_some(), "{signed_in}");
    s.allow(&["other"]).await;
    let rp = s.rp().await;

    // Silent: no code, login_required.
    let url = start_url(&rp, &[("prompt", "none")]);
    let (status, location) = first_hop(&s.app, url.as_str()).await;
    assert_eq!(status, 302);
    assert!(location.starts_with(WIKI_REDIRECT), "{location}");
    let location = url::Url::parse(&location).unwrap();
    assert_eq!(param(&location, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&location, "code"), None);

    // Naming the session's provider: refused with invalid_request, no code.
    let url = start_url(&rp, &[("provider", "corp")]);
    let (status, location) = first_hop(&s.app, url.as_str()).await;
    assert_eq!(status, 302);
    let location = url::Url::parse(&location).unwrap();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(param(&location, "code"), None);

    // Interactive: to the chooser, which sends the user to an allowed provider (the one).
    let url = start_url(&rp, &[]);
    let (status, location) = first_hop(&s.app, url.as_str()).await;
    assert_eq!(status, 302);
    assert!(location.starts_with("/login?req="), "{location}");
    let (status, upstream) = first_hop(&s.app, &s.app.url(&location)).await;
    assert_eq!(status, 302);
    let upstream = url::Url::parse(&upstream).unwrap();
    assert!(
        upstream.as_str().starts_with(&s.upstream.issuer),
        "{upstream}"
    );
    assert_eq!(
        param(&upstream, "redirect_uri"),
        Some(s.app.url("/callback/other"))
    );

    // The control: with corp allowed, the same session answers at once.
    s.allow(&["corp"]).await;
    let url = start_url(&rp, &[("prompt", "none")]);
    let (_, location) = first_hop(&s.app, url.as_str()).await;
    let location = url::Url::parse(&location).unwrap();
    assert!(param(&location, "code").is_some(), "{location}");
    s.app.stop();
}

async fn a_code_issued_before_the_provider_was_removed_is_not_redeemed(db: &TestDb) {
    let s = Setup::new(db).await;
    let rp = s.rp().await;
    let auth = authorize(&s.app, &rp, WIKI_REDIRECT, &["offline_access"]).await;
    s.allow(&["other"]).await;
    let (status, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &auth.code),
            ("redirect_uri", WIKI_REDIRECT),
            ("code_verifier", auth.verifier.secret()),
        ])
        .await;
    assert_invalid_grant(status, &body);
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");

    // The control: a code redeemed while corp is allowed gives tokens.
    s.allow(&["corp"]).await;
    let auth = authorize(&s.app, &rp, WIKI_REDIRECT, &[]).await;
    let (tokens, _) = exchange(&rp, auth).await;
    assert!(tokens.id_token().is_some());
    s.app.stop();
}

async fn a_login_finishing_after_the_provider_was_removed_gets_no_code(db: &TestDb) {
    let s = Setup::new(db).await;
    let rp = s.rp().await;
    let url = start_url(&rp, &[]);
    // The user is at the provider when the admin removes it from the client.
    let at_provider = browse(&s.app, url.as_str(), &s.upstream.issuer).await.url();
    s.allow(&["other"]).await;
    let back = browse(&s.app, at_provider.as_str(), WIKI_REDIRECT)
        .await
        .url();
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("access_denied"),
        "{back}"
    );
    assert_eq!(param(&back, "code"), None);
    let failed = events(&s.app, "login.failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["provider"], "corp");
    assert_eq!(failed[0]["client_id"], WIKI);
    // No session was started: a silent request still finds nobody signed in.
    s.allow(&["corp"]).await;
    let (_, location) = first_hop(&s.app, start_url(&rp, &[("prompt", "none")]).as_str()).await;
    let location = url::Url::parse(&location).unwrap();
    assert_eq!(param(&location, "error").as_deref(), Some("login_required"));
    s.app.stop();
}
