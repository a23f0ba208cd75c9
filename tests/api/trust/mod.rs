//! The adversarial review's findings (issue "Trust"), each as the attacker would try it:
//! account pre-claim through an untrusted provider, login CSRF at the SAML ACS, login cookie
//! fixation, forced re-authentication at SAML IdPs, logout CSRF, resource indicators,
//! forking refresh chains and introspection by strangers.

mod binding;
mod introspection;
mod linking;
mod logout;
mod refresh;
mod resources;

use openidconnect::TokenResponse;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::oidc_support::*;

/// A fresh browser: its own cookie jar, redirects followed by hand.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Logs in at `provider` in `browser` (past any session: `prompt=login`) and redeems the code;
/// returns the ID token's claims.
pub async fn login_through(
    app: &TestApp,
    rp: &Rp,
    browser: &reqwest::Client,
    provider: &str,
) -> Value {
    let (url, _, nonce, verifier) = start(
        rp,
        &["email", "offline_access"],
        &[("provider", provider), ("prompt", "login")],
    );
    let arrived = browse_with(browser, app, url.as_str(), REDIRECT)
        .await
        .url();
    let code = param(&arrived, "code").unwrap_or_else(|| panic!("no code in {arrived}"));
    let (tokens, _) = exchange(
        rp,
        Authorized {
            code,
            nonce,
            verifier,
        },
    )
    .await;
    jwt_claims(&tokens.id_token().expect("an ID token").to_string())
}

/// The `email_verified_by` column of a user: which provider's assertion verified its address.
pub async fn verified_by(app: &TestApp, user_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT email_verified_by FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}
