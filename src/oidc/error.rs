//! OAuth 2.0 errors: JSON at the token-type endpoints (RFC 6749 section 5.2), redirects back
//! to the client from the authorization endpoint (section 4.1.2.1).

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use serde::Serialize;
use url::Url;

use crate::clients::RedirectUri;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    /// RFC 8707: a `resource` the client may not name, or a malformed one.
    InvalidTarget,
    AccessDenied,
    LoginRequired,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    UnsupportedTokenType,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

/// What a 503 for an unavailable database asks clients to wait (`Retry-After`, seconds).
pub const RETRY_AFTER_SECS: u64 = 5;

/// `res` with `Retry-After`, for a 503 the database's absence caused.
pub fn retry_later(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(RETRY_AFTER_SECS),
    );
    res
}

/// An error answered as JSON by /token, /revoke and /introspect.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// A failure on Portico's side: `temporarily_unavailable` (503) when the database cannot
    /// be reached or is busy, so that the client retries, `server_error` (500) otherwise.
    pub fn server<E: std::error::Error + 'static>(e: E) -> Self {
        if crate::store::caused_by_unavailable(&e) {
            tracing::warn!(error = %e, "token endpoint: the database is unavailable");
            return Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the service is temporarily unavailable; try again shortly",
            );
        }
        tracing::error!(error = %e, "token endpoint failure");
        Self::new(ErrorCode::ServerError, "an internal error occurred")
    }

    /// The response: 401 with `WWW-Authenticate` for client authentication failures, 400 for
    /// the rest of section 5.2, 500/503 for server trouble; never cached.
    pub fn response(&self) -> HttpResponse {
        let status = match self.code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut builder = HttpResponse::build(status);
        builder
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if self.code == ErrorCode::TemporarilyUnavailable {
            builder.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
        }
        if self.code == ErrorCode::InvalidClient {
            builder.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="portico""#));
        }
        builder.json(Body {
            error: self.code.as_str(),
            error_description: &self.description,
        })
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl actix_web::ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.response().status()
    }

    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

/// The client's validated redirect URI with these query parameters added.
fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// A redirect (302, never cached) to `location`.
pub fn found(location: String) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A redirect to the client's validated redirect URI with these query parameters added.
pub fn redirect_with(redirect_uri: &RedirectUri, params: &[(&str, &str)]) -> HttpResponse {
    found(with_params(redirect_uri.as_str(), params))
}

/// Where an authorization error goes back to the client (RFC 6749 section 4.1.2.1), with
/// `state` and the issuer (RFC 9207).
pub fn error_location(
    redirect_uri: &RedirectUri,
    code: ErrorCode,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut params = vec![("error", code.as_str()), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    with_params(redirect_uri.as_str(), &params)
}

/// An authorization error sent back to the client at once.
pub fn redirect_error(
    redirect_uri: &RedirectUri,
    code: ErrorCode,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> HttpResponse {
    found(error_location(
        redirect_uri,
        code,
        description,
        state,
        issuer,
    ))
}

/// A refusal at a token-type endpoint: an OAuth error, or a ready response (429).
pub enum Rejection {
    OAuth(OAuthError),
    Response(HttpResponse),
}

impl From<OAuthError> for Rejection {
    fn from(e: OAuthError) -> Self {
        Rejection::OAuth(e)
    }
}

impl Rejection {
    pub fn into_response(self) -> HttpResponse {
        match self {
            Rejection::OAuth(e) => e.response(),
            Rejection::Response(r) => r,
        }
    }
}
