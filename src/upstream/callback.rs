//! The parts of a redirect login that are the same for every OAuth2 kind: carrying the
//! connector's pending values from `begin` to `finish`, and reading the callback.

use openidconnect::CsrfToken;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::{CallbackParams, LoginStart, UpstreamError};

/// The authorization code of a callback, or the error the provider sent back instead
/// (truncated: it is the provider's text and ends up in logs and events).
pub fn authorization_code(params: &CallbackParams) -> Result<&str, UpstreamError> {
    if let Some(error) = params.get("error") {
        return Err(UpstreamError::Denied {
            error: error.chars().take(100).collect(),
            description: params
                .get("error_description")
                .map(|d| d.chars().take(300).collect()),
        });
    }
    params
        .get("code")
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .ok_or(UpstreamError::MissingCode)
}

/// A login start whose connector-private values (`pending`) travel sealed to `finish`.
pub fn login_start<P: Serialize>(url: Url, state: &CsrfToken, pending: &P) -> LoginStart {
    let secret = serde_json::to_string(pending).expect("pending login values serialise");
    LoginStart {
        url,
        state: SecretString::from(state.secret().clone()),
        secret: SecretString::from(secret),
    }
}

/// The values `login_start` packed, back in `finish`.
pub fn pending<P: DeserializeOwned>(secret: &SecretString) -> Result<P, UpstreamError> {
    serde_json::from_str(secret.expose_secret())
        .map_err(|_| UpstreamError::Misconfigured("unreadable pending login".into()))
}
