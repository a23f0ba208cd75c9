//! The admin UI and API: sign-in, sessions, CSRF, lockout, API tokens, keys, audit, OpenAPI,
//! the CLI, and a real browser.

mod api;
mod audit_keys;
mod browser;
mod cli;
mod client_development;
mod client_page;
mod clients;
mod clients_ui;
mod confirm;
mod dashboard;
mod hostile;
mod provider_forms;
mod providers;
mod providers_ui;
mod reveal;
mod setup;
mod sign_ins;
mod try_login;
mod ui;
mod users;
mod webhooks;

use portico::admin::Caller;
use portico::admin::auth::accounts::{self, AdminEmail};
use portico::admin::tokens::service as api_tokens;
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::TestApp;

pub const EMAIL: &str = "ada@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

/// Creates the test admin directly through the service, as `portico admin create` does.
pub async fn create_admin(app: &TestApp) {
    accounts::create(
        &app.state.store,
        &app.state.passwords,
        &AdminEmail::parse(EMAIL).unwrap(),
        SecretString::from(PASSWORD),
        &Caller::cli(),
    )
    .await
    .expect("admin created");
}

/// Mints an admin API token, as `portico admin token` does.
pub async fn api_token(app: &TestApp, name: &str) -> String {
    let (_, token) = api_tokens::mint(&app.state.store, &Caller::cli(), name)
        .await
        .expect("token minted");
    token.expose_secret().to_owned()
}

/// A browser-like client: its own cookie jar, redirects not followed.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The value of the first hidden `csrf` field in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// The `Set-Cookie` of an answer for the cookie `name` (with its attributes), if it sets one.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Loads the sign-in form into `client` (its cookie) and returns the form's CSRF token.
pub async fn sign_in_form(app: &TestApp, client: &reqwest::Client) -> String {
    let form = client
        .get(app.url("/admin/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csrf_in(&form)
}

/// Fetches the sign-in form and posts it.
pub async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let csrf = sign_in_form(app, client).await;
    client
        .post(app.url("/admin/sign-in"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// A client signed in as the test admin.
pub async fn signed_in(app: &TestApp) -> reqwest::Client {
    let client = client();
    let res = sign_in(app, &client, EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 303, "sign-in succeeds");
    assert_eq!(res.headers()["location"], "/admin");
    client
}

/// A page's body, asserting its status.
pub async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    res.text().await.unwrap()
}

/// How many audit entries have `action`.
pub async fn audit_count(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

/// An admin API request, with a Bearer token when given.
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    token: Option<&str>,
    path: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(&format!("/admin/api/v1{path}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// The JSON body, asserting the status.
pub async fn json_of(res: reqwest::Response, status: u16) -> serde_json::Value {
    let got = res.status();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

/// An error answer, asserting its status and code.
pub async fn error(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let body = json_of(res, status).await;
    assert_eq!(body["error"], code, "{body}");
    body
}

/// An admin API token that has been revoked.
pub async fn revoked_api_token(app: &TestApp) -> String {
    let token = api_token(app, "revoked").await;
    let id: String = sqlx::query_scalar("SELECT id FROM admin_api_tokens WHERE name = 'revoked'")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    api_tokens::revoke(&app.state.store, &Caller::cli(), &id)
        .await
        .unwrap();
    token
}
