//! Upstream identity providers served over real HTTP inside the tests, and the browser that
//! walks a connector's authorize URL.

pub mod github;
pub mod google;
pub mod stall;

use std::collections::HashMap;
use std::time::Duration;

use actix_web::dev::Server;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico::upstream::http::{HttpSettings, UpstreamHttp};
use portico::upstream::{CallbackParams, LoginStart};
use secrecy::ExposeSecret;

/// Runs `server` (bound to port 0) in the background and returns its base URL.
pub fn serve(server: Server, port: u16) -> String {
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// The outbound client as Portico configures it, with short backoffs so retries stay fast.
pub fn upstream_http() -> UpstreamHttp {
    UpstreamHttp::new(HttpSettings {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..HttpSettings::default()
    })
    .expect("outbound client")
}

/// A query parameter of `url`.
pub fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What a browser does with `start`: opens the authorize URL, where the provider (which logs
/// the user in at once) redirects back. Returns the callback's query, after checking that it
/// goes to `redirect_uri` and carries the `state` Portico sent.
pub async fn authorize(start: &LoginStart, redirect_uri: &str) -> CallbackParams {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser.get(start.url.clone()).send().await.unwrap();
    assert_eq!(res.status(), 302, "the authorize endpoint redirects back");
    let location = res.headers()["location"].to_str().unwrap();
    let callback = url::Url::parse(location).unwrap();
    assert!(
        location.starts_with(redirect_uri),
        "{location} goes to {redirect_uri}"
    );
    let params: CallbackParams = callback.query_pairs().into_owned().collect();
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(start.state.expose_secret()),
        "the provider echoes the state Portico chose"
    );
    params
}

/// RFC 7636 S256: what a verifier's challenge must be.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// A random opaque value with a prefix, as providers mint codes and tokens.
pub fn mint(prefix: &str) -> String {
    let mut bytes = [0u8; 20];
    portico::crypto::random_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// An `application/x-www-form-urlencoded` body or query string.
pub fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
