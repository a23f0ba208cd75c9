//! `GET`/`POST /userinfo` (OIDC Core 5.3): the claims of the access token's user, as its
//! scopes allow and its client's claim rules (as they are now) keep (`tokens::user_claims`).
//! The token is verified offline (allow-listed algorithms, `typ: at+jwt`); the liveness check
//! (`oidc::liveness`) reads the user and the client and says whether the token is still live.

use super::liveness::{self, Liveness};
use super::scope::Scope;
use super::tokens::{UserClaims, user_claims, verify_access};
use crate::ops::client_ip::client_ip as peer_ip;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

#[derive(Serialize)]
struct UserInfo {
    sub: String,
    #[serde(flatten)]
    profile: UserClaims,
}

pub(crate) fn bearer_error(
    status: actix_web::http::StatusCode,
    error: &str,
    description: &str,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!(r#"Bearer error="{error}", error_description="{description}""#),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": error, "error_description": description }))
}

pub(crate) fn invalid_token(description: &str) -> HttpResponse {
    bearer_error(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "invalid_token",
        description,
    )
}

/// The bearer token from the header, or (POST only) the form body (RFC 6750 2.1, 2.2).
fn bearer(req: &HttpRequest, body: &[u8]) -> Option<String> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return crate::ops::bearer::token(req).map(str::to_owned);
    }
    if req.method() == actix_web::http::Method::POST {
        return url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned());
    }
    None
}

pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(limited) = state.limits.check_ip(peer_ip(&req)) {
        return limited;
    }
    let Some(token) = bearer(&req, &body) else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="portico""#))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    };
    let claims = match verify_access(&state, &token, true).await {
        Ok(c) => c,
        Err(e) => return invalid_token(&e.to_string()),
    };
    if let Some(limited) = state.limits.check_client(&claims.client_id) {
        return limited;
    }
    let scope = Scope::parse(&claims.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return bearer_error(
            actix_web::http::StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks the openid scope",
        );
    }
    let (user, client) = match liveness::check(&state.store, &claims).await {
        Ok(Liveness::Live {
            user: Some(user),
            client,
        }) => (*user, client),
        Ok(Liveness::Live { user: None, .. }) => return invalid_token("the token has no user"),
        Ok(Liveness::Dead(why)) => return invalid_token(why),
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "userinfo: the database is unavailable");
            return super::error::retry_later(HttpResponse::ServiceUnavailable().finish());
        }
        Err(e) => {
            tracing::error!(error = %e, "userinfo query failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserInfo {
            sub: user.id.clone(),
            profile: user_claims(&user, &scope, &client),
        })
}
