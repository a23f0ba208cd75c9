//! Client authentication at /token, /revoke and /introspect: `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients (RFC 6749 2.3, OIDC Core 9).

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::{ErrorCode, OAuthError, Rejection};
use super::token::parse_form;
use crate::clients::Client;
use crate::ops::client_ip::client_ip;
use crate::state::AppState;

fn invalid_client() -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, "client authentication failed")
}

/// The credentials of a Basic header: both parts are form-encoded (RFC 6749 2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    parse_basic(value.to_str().map_err(|_| invalid_client())?)
}

/// The `(client_id, secret)` of an `Authorization` header value; `None` when it is not Basic.
pub(crate) fn parse_basic(value: &str) -> Result<Option<(String, String)>, OAuthError> {
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid_client)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

/// What /token, /revoke and /introspect do first: the per-address rate limit, the form, and
/// the client's authentication; `Err` is the answer.
pub async fn authenticated(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Client, HashMap<String, String>), HttpResponse> {
    if let Some(limited) = state.limits.check_ip(client_ip(req)) {
        return Err(limited);
    }
    let form = parse_form(body).map_err(|e| e.response())?;
    let client = authenticate(req, &form, state)
        .await
        .map_err(|r| r.into_response())?;
    Ok((client, form))
}

/// Authenticates the calling client. A confidential client must prove its secret by exactly
/// one method; a public client sends only its `client_id`.
pub async fn authenticate(
    req: &HttpRequest,
    form: &HashMap<String, String>,
    state: &AppState,
) -> Result<Client, Rejection> {
    let basic = basic_credentials(req).map_err(Rejection::OAuth)?;
    let body_id = form.get("client_id").filter(|s| !s.is_empty());
    let body_secret = form.get("client_secret").filter(|s| !s.is_empty());
    let (client_id, secret) = match (&basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "use one client authentication method, not two",
            )
            .into());
        }
        (Some((id, _)), Some(body), _) if body != id => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "client_id differs from the authenticated client",
            )
            .into());
        }
        (Some((id, secret)), _, _) => (id.as_str(), Some(secret.as_str())),
        (None, Some(id), secret) => (id.as_str(), secret.map(String::as_str)),
        (None, None, _) => return Err(invalid_client().into()),
    };
    if let Some(limited) = state.limits.check_client(client_id) {
        return Err(Rejection::Response(limited));
    }
    let client = crate::clients::repo::find(&state.store, client_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(invalid_client)?;
    let ok = match (client.is_public(), secret) {
        (true, None) => true,
        (false, Some(s)) => client.secret_matches(s),
        _ => false,
    };
    if ok {
        Ok(client)
    } else {
        Err(invalid_client().into())
    }
}
