//! Shared pieces of the OIDC provider tests: Portico with an upstream provider and clients
//! configured, a relying party built with the `openidconnect` crate, and a cookie-keeping
//! browser that follows redirects by hand.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use portico::clients::ClientConfig;
use portico::crypto::MasterKey;
use portico::providers::ProviderConfig;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::upstream_idp::{UPSTREAM_CLIENT_ID, UPSTREAM_CLIENT_SECRET, Upstream};

pub const CLIENT_ID: &str = "app";
pub const CLIENT_SECRET: &str = "app-secret-0123456789abcdef0123456789";
pub const REDIRECT: &str = "http://127.0.0.1:7777/cb";
pub const POST_LOGOUT: &str = "http://127.0.0.1:7777/bye";
pub const PUBLIC_ID: &str = "spa";
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1/spa-cb";

pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub fn provider(id: &str, issuer: &str, trust_email: bool) -> ProviderConfig {
    toml::from_str(&provider_toml(id, issuer, trust_email)).unwrap()
}

/// The upstream as a `[[providers]]` entry of portico.toml (without the header).
pub fn provider_toml(id: &str, issuer: &str, trust_email: bool) -> String {
    format!(
        r#"
id = "{id}"
kind = "oidc"
display_name = "Corp {id}"
client_id = "{UPSTREAM_CLIENT_ID}"
client_secret = "{UPSTREAM_CLIENT_SECRET}"
issuer = "{issuer}"
scopes = ["openid", "email", "profile", "groups"]
email_domains = ["corp.example"]
trust_email = {trust_email}
[claims]
groups = "groups"
"#
    )
}

pub fn clients() -> Vec<ClientConfig> {
    vec![
        toml::from_str(&format!(
            r#"
client_id = "{CLIENT_ID}"
name = "The App"
type = "confidential"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT}"]
post_logout_redirect_uris = ["{POST_LOGOUT}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scopes = ["openid", "email", "profile", "groups", "offline_access", "api:read"]
"#
        ))
        .unwrap(),
        toml::from_str(&format!(
            r#"
client_id = "{PUBLIC_ID}"
type = "public"
redirect_uris = ["{PUBLIC_REDIRECT}"]
"#
        ))
        .unwrap(),
    ]
}

/// Portico with the upstream as provider `corp` and the test clients.
pub async fn spawn_portico(
    db: &TestDb,
    upstream: &Upstream,
    customize: impl FnOnce(&mut portico::config::Settings),
) -> TestApp {
    let issuer = upstream.issuer.clone();
    spawn_app_with(db, MasterKey::generate(), move |s| {
        s.providers = vec![provider("corp", &issuer, false)];
        s.clients = clients();
        customize(s);
    })
    .await
}

pub fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A relying party for `client_id`, configured from Portico's discovery document.
pub async fn relying_party(
    app: &TestApp,
    client_id: &str,
    secret: Option<&str>,
    redirect: &str,
) -> Rp {
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.address.clone()).unwrap(),
        &rp_http(),
    )
    .await
    .expect("discovery works with openidconnect");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap())
}

/// Where a browser ended up.
#[derive(Debug)]
pub enum Arrival {
    /// Redirected to a URL starting with the stop prefix.
    At(url::Url),
    /// A page that is not a redirect.
    Page(u16, String),
}

impl Arrival {
    pub fn url(self) -> url::Url {
        match self {
            Arrival::At(u) => u,
            Arrival::Page(status, body) => panic!("expected a redirect, got {status}: {body}"),
        }
    }

    pub fn page(self) -> (u16, String) {
        match self {
            Arrival::Page(s, b) => (s, b),
            Arrival::At(u) => panic!("expected a page, was redirected to {u}"),
        }
    }

    /// A failed sign-in's error page: its status and where its "Return to the application"
    /// link goes (the client's redirect URI with the OAuth error).
    pub fn failure(self) -> (u16, url::Url) {
        let (status, body) = self.page();
        let start = body
            .find(r#"id="back" href=""#)
            .unwrap_or_else(|| panic!("no way back in the page: {body}"))
            + r#"id="back" href=""#.len();
        let end = start + body[start..].find('"').unwrap();
        let href = body[start..end]
            .replace("&#x2f;", "/")
            .replace("&#47;", "/")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&#38;", "&")
            .replace("&#x26;", "&")
            .replace("&amp;", "&");
        (status, url::Url::parse(&href).unwrap())
    }
}

/// Follows redirects with the app's cookie-keeping client until one leaves for `stop`.
pub async fn browse(app: &TestApp, start: &str, stop: &str) -> Arrival {
    browse_with(&app.client, app, start, stop).await
}

/// As `browse`, with another browser (`client`).
pub async fn browse_with(
    client: &reqwest::Client,
    app: &TestApp,
    start: &str,
    stop: &str,
) -> Arrival {
    browse_routed(client, &app.address, start, stop, |url, _| url.to_owned()).await
}

/// As `browse_with`, relative redirects resolved against `base`, and each hop's URL first
/// passed through `route` with the hop's number (to spread the hops over several instances).
pub async fn browse_routed(
    client: &reqwest::Client,
    base: &str,
    start: &str,
    stop: &str,
    route: impl Fn(&str, usize) -> String,
) -> Arrival {
    let mut url = start.to_owned();
    for hop in 0..10 {
        let res = client.get(route(&url, hop)).send().await.unwrap();
        if !res.status().is_redirection() {
            let status = res.status().as_u16();
            return Arrival::Page(status, res.text().await.unwrap());
        }
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let next = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        if next.starts_with(stop) {
            return Arrival::At(url::Url::parse(&next).unwrap());
        }
        url = next;
    }
    panic!("too many redirects");
}

pub fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An authorization request with S256 PKCE, `scopes` beyond openid and `extra` parameters.
pub fn start(
    rp: &Rp,
    scopes: &[&str],
    extra: &[(&str, &str)],
) -> (url::Url, CsrfToken, Nonce, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in scopes {
        request = request.add_scope(Scope::new((*s).to_owned()));
    }
    for (k, v) in extra {
        request = request.add_extra_param(*k, *v);
    }
    let (url, csrf, nonce) = request.url();
    (url, csrf, nonce, verifier)
}

/// The URL alone, for tests that never redeem the code.
pub fn start_url(rp: &Rp, extra: &[(&str, &str)]) -> url::Url {
    start(rp, &[], extra).0
}

pub struct Authorized {
    pub code: String,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// Runs authorize -> login at the upstream -> callback -> code, as a browser would.
pub async fn authorize(app: &TestApp, rp: &Rp, redirect: &str, scopes: &[&str]) -> Authorized {
    let (url, csrf, nonce, verifier) = start(rp, scopes, &[]);
    let arrived = browse(app, url.as_str(), redirect).await.url();
    assert_eq!(
        param(&arrived, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        param(&arrived, "iss").as_deref(),
        Some(app.address.as_str())
    );
    let code = param(&arrived, "code").unwrap_or_else(|| panic!("no code in {arrived}"));
    Authorized {
        code,
        nonce,
        verifier,
    }
}

pub async fn exchange(rp: &Rp, auth: Authorized) -> (CoreTokenResponse, Nonce) {
    let response = rp
        .exchange_code(AuthorizationCode::new(auth.code))
        .unwrap()
        .set_pkce_verifier(auth.verifier)
        .request_async(&rp_http())
        .await
        .expect("code exchange");
    (response, auth.nonce)
}

/// authorize with `extra` parameters, then the code exchange: the tokens.
pub async fn sign_in_with(
    app: &TestApp,
    rp: &Rp,
    redirect: &str,
    scopes: &[&str],
    extra: &[(&str, &str)],
) -> CoreTokenResponse {
    let (url, _csrf, nonce, verifier) = start(rp, scopes, extra);
    let arrived = browse(app, url.as_str(), redirect).await.url();
    let code = param(&arrived, "code").unwrap_or_else(|| panic!("no code in {arrived}"));
    let auth = Authorized {
        code,
        nonce,
        verifier,
    };
    exchange(rp, auth).await.0
}

/// The claims of a JWT, unverified (for assertions after verification elsewhere).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// The `data` of every recorded event of `event_type`, oldest first.
pub async fn events(app: &TestApp, event_type: &str) -> Vec<Value> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT body FROM events WHERE type = $1 ORDER BY created_at, id")
            .bind(event_type)
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    rows.iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["data"].clone())
        .collect()
}

/// POSTs a form to a Portico endpoint, authenticating with client_secret_basic when given.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = rp_http().post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The userinfo answer for access token `token`, as JSON.
pub async fn userinfo_of(app: &TestApp, token: &str) -> Value {
    rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    rp_http()
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts a token endpoint answer is `invalid_grant`.
pub fn assert_invalid_grant(status: u16, body: &Value) {
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

/// (rotated_at, revoked_at) of every member of the refresh family `token` belongs to.
pub async fn family_of(app: &TestApp, token: &str) -> Vec<(Option<i64>, Option<i64>)> {
    let digest = portico::crypto::TokenDigest::of(token).as_bytes().to_vec();
    sqlx::query_as(
        "SELECT rotated_at, revoked_at FROM refresh_tokens WHERE family_id = \
         (SELECT family_id FROM refresh_tokens WHERE token_digest = $1)",
    )
    .bind(digest)
    .fetch_all(app.state.store.pool())
    .await
    .unwrap()
}

/// The authorization_code grant at `app`: (status, body).
pub async fn redeem(app: &TestApp, auth: &Authorized) -> (u16, Value) {
    let (status, _, body) = post_form(
        app,
        "/token",
        Some((CLIENT_ID, CLIENT_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &auth.code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", auth.verifier.secret()),
        ],
    )
    .await;
    (status, body)
}
