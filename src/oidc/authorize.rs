//! `GET /authorize` (RFC 6749 4.1.1, OIDC Core 3.1.2).
//!
//! `client_id` and `redirect_uri` are checked first: while either is wrong the browser gets
//! an HTML error page and is never redirected. Every later error goes back to the client.
//! With a live SSO session the code is issued at once; otherwise the request is saved as a
//! pending authorization (a database row) and the user goes to the login chooser.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use sqlx::AnyConnection;

use super::error::{ErrorCode, redirect_error, redirect_with};
use super::scope::Scope;
use super::session::{self, LOGIN_COOKIE, Session};
use super::web::error_page;
use crate::clients::{Client, GrantType, RedirectUri};
use crate::crypto::random_token;
use crate::grants::codes::{self, NewCode};
use crate::grants::pending;
use crate::ops::request_id::loggable;
use crate::state::AppState;
use crate::store::{self, StoreError};

pub use crate::grants::pending::AuthRequest;

/// The most characters of a `client_id` as given that a log line keeps.
const MAX_LOGGED_CLIENT_ID: usize = 128;

/// An error to report to the client by redirect.
pub(crate) struct Refusal(pub(crate) ErrorCode, pub(crate) String);

fn refuse(code: ErrorCode, text: impl Into<String>) -> Refusal {
    Refusal(code, text.into())
}

/// Whether `s` is a PKCE S256 challenge: 43 base64url characters (RFC 7636 4.2).
fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Every value of `name` in a query string, in order (a map keeps only one).
pub(crate) fn all_values(query: &str, name: &str) -> Vec<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// Checks every parameter but `client_id` and `redirect_uri` (the caller has matched both);
/// `resources` are every `resource` value of the query.
pub(crate) fn validate(
    client: &Client,
    redirect_uri: &RedirectUri,
    q: &HashMap<String, String>,
    resources: &[&str],
) -> Result<(AuthRequest, Option<String>, bool), Refusal> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let invalid = |text: &str| Err(refuse(ErrorCode::InvalidRequest, text));
    match get("response_type") {
        Some("code") => {}
        None => return invalid("response_type is required"),
        Some(_) => {
            let text = "only response_type=code is supported";
            return Err(refuse(ErrorCode::UnsupportedResponseType, text));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        let text = "this client may not use the authorization code flow";
        return Err(refuse(ErrorCode::UnauthorizedClient, text));
    }
    if get("request").is_some() || get("request_uri").is_some() {
        return invalid("request objects are not supported");
    }
    let scope = Scope::parse(get("scope").unwrap_or("openid"))
        .map_err(|e| refuse(ErrorCode::InvalidScope, e))?;
    if !scope.within(&client.scopes) {
        let text = "a requested scope is not allowed for this client";
        return Err(refuse(ErrorCode::InvalidScope, text));
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) if client.is_public() => {
            return invalid("PKCE (code_challenge with S256) is required for public clients");
        }
        (None, None) => None,
        (Some(c), Some("S256")) if is_s256_challenge(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => return invalid("code_challenge is not a valid S256 challenge"),
        (_, None) | (_, Some("plain")) => {
            return invalid("code_challenge_method must be S256; plain is not accepted");
        }
        (_, Some(_)) => return invalid("code_challenge_method must be S256"),
    };
    let prompts: Vec<&str> = get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return invalid("prompt=none cannot be combined with other values");
    }
    let max_age = match get("max_age").map(str::parse::<u64>) {
        None => None,
        Some(Ok(seconds)) => Some(seconds),
        Some(Err(_)) => return invalid("max_age must be a number of seconds"),
    };
    let resource = super::resource::requested(client, resources)
        .map_err(|r| refuse(ErrorCode::InvalidTarget, r.0))?
        .map(|r| r.as_str().to_owned());
    let provider = get("provider").map(str::to_owned);
    if let Some(p) = &provider
        && !client.allows_provider_named(p)
    {
        return invalid("the requested provider is not available to this client");
    }
    Ok((
        AuthRequest {
            client_id: client.client_id.to_string(),
            redirect_uri: redirect_uri.clone(),
            scope: scope.to_string(),
            state: get("state").map(str::to_owned),
            nonce: get("nonce").map(str::to_owned),
            code_challenge,
            resource,
            max_age,
            prompt_login: prompts.contains(&"login"),
            login_hint: get("login_hint").map(|h| h.chars().take(256).collect()),
        },
        provider,
        prompt_none,
    ))
}

#[get("/authorize")]
pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if let Some(limited) = state
        .limits
        .check_ip(crate::ops::client_ip::client_ip(&req))
    {
        return limited;
    }
    let q = query.into_inner();
    // Refusals are logged with the client id as given (bounded) and the reason, never the
    // query: it may carry a login_hint, a state or other values that are not ours to log.
    let given_client = q
        .get("client_id")
        .map(|c| loggable(c, MAX_LOGGED_CLIENT_ID));
    let refused = |reason: &str, error: Option<ErrorCode>| {
        tracing::info!(
            client_id = given_client.as_deref().unwrap_or(""),
            reason = %loggable(reason, 256),
            error = error.map(ErrorCode::as_str),
            request_id = %crate::ops::request_id::of(&req).unwrap_or_default(),
            "authorize refused"
        );
    };
    let bad_request = |msg: &str| {
        refused(msg, None);
        error_page(StatusCode::BAD_REQUEST, "Invalid sign-in request", msg)
    };
    let Some(client_id) = q.get("client_id").filter(|c| !c.is_empty()) else {
        return bad_request("The request names no client (client_id is missing).");
    };
    if let Some(limited) = state.limits.check_client(client_id) {
        return limited;
    }
    let client = match crate::clients::repo::find(&state.store, client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return bad_request("The application that sent you here is not registered."),
        Err(e) => return server_error_page(e),
    };
    let Some(redirect_uri) = q.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return bad_request("The request has no redirect_uri.");
    };
    let Some(redirect) = client.redirect_uri(redirect_uri) else {
        return bad_request("The redirect_uri is not registered for this application.");
    };
    let issuer = state.settings.server.issuer.as_str();
    let resources = all_values(req.query_string(), "resource");
    let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
    let (request, provider, prompt_none) = match validate(&client, &redirect, &q, &resources) {
        Ok(v) => v,
        Err(Refusal(code, text)) => {
            refused(&text, Some(code));
            return redirect_error(
                &redirect,
                code,
                &text,
                q.get("state").map(String::as_str),
                issuer,
            );
        }
    };
    let state_param = request.state.as_deref();

    let session = match session::current(&state.store, &req, &state.settings).await {
        Ok(s) => s.filter(|s| session_satisfies(s, &request, provider.as_deref(), &client)),
        Err(e) => return server_error_page(e),
    };
    // The provider's maximum session lifetime (SAML) bounds the SSO session too.
    let session = match session {
        Some(s) => match super::session_limit::within_limit(
            &state,
            &s.provider_id,
            s.auth_time,
            store::now(),
        )
        .await
        {
            Ok(live) => live.then_some(s),
            Err(e) => return server_error_page(e),
        },
        None => None,
    };
    if let Some(session) = session {
        let mut conn = match state.store.write_conn().await {
            Ok(c) => c,
            Err(e) => return server_error_page(e),
        };
        return match issue_code(
            &mut conn,
            &request,
            &session,
            state.settings.oidc.code_ttl_secs,
        )
        .await
        {
            Ok(code) => code_redirect(&request, &code, issuer),
            Err(e) => server_error_page(e),
        };
    }
    if prompt_none {
        refused("the user is not signed in", Some(ErrorCode::LoginRequired));
        return redirect_error(
            &redirect,
            ErrorCode::LoginRequired,
            "the user is not signed in",
            state_param,
            issuer,
        );
    }

    begin_login(
        &req,
        &state,
        &pending::Purpose::Authorize(request),
        provider.as_deref(),
    )
    .await
}

/// Saves a pending login for `purpose`, bound to this browser, and sends the browser to the
/// chooser (straight to `provider`'s login when one is named).
pub(crate) async fn begin_login(
    req: &HttpRequest,
    state: &AppState,
    purpose: &pending::Purpose,
    provider: Option<&str>,
) -> HttpResponse {
    let (id, cookie) = match save_bound(req, state, purpose).await {
        Ok(saved) => saved,
        Err(e) => return server_error_page(e),
    };
    let mut location = format!("/login?req={}", urlencode(&id));
    if let Some(p) = provider {
        location.push_str("&provider=");
        location.push_str(&urlencode(p));
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish()
}

/// Saves a pending row for `purpose` bound to this browser: a fresh binding, added to the
/// login cookie (returned, to be set) with those of other logins still pending here.
pub(crate) async fn save_bound(
    req: &HttpRequest,
    state: &AppState,
    purpose: &pending::Purpose,
) -> Result<(String, actix_web::cookie::Cookie<'static>), crate::store::StoreError> {
    // A fresh binding for this login; the cookie keeps those of other logins still pending
    // in this browser (other tabs), never a value that binds nothing.
    let binding = random_token("").expose_secret().to_owned();
    let cookie = req.cookie(LOGIN_COOKIE);
    let others: Vec<&str> = cookie
        .as_ref()
        .map(|c| pending::bindings(c.value()).collect())
        .unwrap_or_default();
    let others = pending::live_bindings(&state.store, &others).await?;
    let cookie_value = std::iter::once(binding.as_str())
        .chain(others.into_iter().take(pending::MAX_BINDINGS - 1))
        .collect::<Vec<_>>()
        .join(".");
    let ttl = state.settings.oidc.pending_login_ttl_secs;
    let id = pending::create(&state.store, purpose, &binding, ttl).await?;
    let cookie = session::cookie(&state.settings, LOGIN_COOKIE, cookie_value, ttl as i64);
    Ok((id, cookie))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Whether a live session can answer this request without a new login.
fn session_satisfies(
    session: &Session,
    request: &AuthRequest,
    provider: Option<&str>,
    client: &Client,
) -> bool {
    if request.prompt_login || session.needs_login {
        return false;
    }
    if let Some(max_age) = request.max_age
        && store::now() - session.auth_time > max_age as i64
    {
        return false;
    }
    if provider.is_some_and(|p| p != session.provider_id) {
        return false;
    }
    // A session that came through a provider this client does not allow answers nothing: the
    // user goes to the chooser (or `prompt=none` gets `login_required`).
    client.allows_provider_named(&session.provider_id)
}

/// Stores a new authorization code for `request`, answered by `session`, and returns it.
pub async fn issue_code(
    conn: &mut AnyConnection,
    request: &AuthRequest,
    session: &Session,
    ttl_secs: u64,
) -> Result<String, StoreError> {
    let code = random_token("").expose_secret().to_owned();
    let new = NewCode {
        request,
        user_id: &session.user_id,
        identity_id: &session.identity_id,
        session_id: &session.id,
        auth_time: session.auth_time,
        expires_at: store::now() + ttl_secs as i64,
    };
    codes::insert_in(conn, &code, &new).await?;
    Ok(code)
}

/// The successful authorization response: code, state and issuer (RFC 9207).
pub fn code_redirect(request: &AuthRequest, code: &str, issuer: &str) -> HttpResponse {
    let mut params = vec![("code", code)];
    if let Some(s) = &request.state {
        params.push(("state", s.as_str()));
    }
    params.push(("iss", issuer));
    redirect_with(&request.redirect_uri, &params)
}

/// The client's answer when a login for `request` is refused: `access_denied` with `text`.
pub fn access_denied(request: &AuthRequest, text: &str, issuer: &str) -> HttpResponse {
    redirect_error(
        &request.redirect_uri,
        ErrorCode::AccessDenied,
        text,
        request.state.as_deref(),
        issuer,
    )
}

/// The page of a browser step that failed on Portico's side: 503 with `Retry-After` when the
/// database cannot be reached or is busy, 500 otherwise.
pub fn server_error_page<E: std::error::Error + 'static>(e: E) -> HttpResponse {
    if crate::store::caused_by_unavailable(&e) {
        tracing::warn!(error = %e, "browser flow: the database is unavailable");
        return super::error::retry_later(error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "Portico cannot reach its database right now. Please try again in a moment.",
        ));
    }
    tracing::error!(error = %e, "browser flow failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Portico could not complete this step. Please try again in a moment.",
    )
}

/// S256: BASE64URL(SHA-256(verifier)), compared in constant time.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    use subtle::ConstantTimeEq;
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(digest.as_ref());
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}
