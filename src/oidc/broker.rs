//! `GET /broker/{provider}/token`: a fresh upstream access token for the bearer's user.
//!
//! The bearer is a Portico access token (verified offline as `/userinfo` does) with the scope
//! `broker:read-token`, issued to a client that allows the provider (`access_denied`
//! otherwise). A stored token expiring within a minute is refreshed
//! first (`super::refresh`: one upstream call per identity under the lease in its row). A
//! token is never served stale: a refresh that fails is an error, and `invalid_grant` marks
//! the identity for a new login.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::oidc::liveness::Liveness;
use crate::oidc::scope::Scope;
use crate::oidc::tokens::{AccessClaims, verify_access};
use crate::oidc::userinfo::{bearer_error, invalid_token};
use crate::state::AppState;
use crate::store::StoreError;
use crate::upstream::{ProviderId, UpstreamTokens};
use crate::vault::refresh::{Refreshed, Want, refresh_identity};

/// The scope a Portico access token needs here.
pub const BROKER_SCOPE: &str = "broker:read-token";

fn error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": error, "error_description": description }))
}

fn login_required(description: &str) -> HttpResponse {
    error(StatusCode::CONFLICT, "login_required", description)
}

fn internal(e: StoreError) -> HttpResponse {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "broker: the database is unavailable");
        return super::error::retry_later(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the token vault cannot be reached; try again shortly",
        ));
    }
    tracing::error!(error = %e, "broker: store failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the token vault could not be read",
    )
}

fn served(tokens: &UpstreamTokens) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": tokens.access_token.expose_secret(),
            "token_type": "Bearer",
            "expires_at": tokens.expires_at,
            "scope": tokens.scope,
        }))
}

/// The verified claims of the request's bearer token, or the response refusing it.
async fn authorize(req: &HttpRequest, state: &AppState) -> Result<AccessClaims, HttpResponse> {
    let token = crate::ops::bearer::token(req).ok_or_else(|| {
        HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="portico""#))
            .finish()
    })?;
    let claims = verify_access(state, token, true)
        .await
        .map_err(|e| invalid_token(&e.to_string()))?;
    if !Scope::parse(&claims.scope)
        .unwrap_or_default()
        .contains(BROKER_SCOPE)
    {
        return Err(bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks the broker:read-token scope",
        ));
    }
    match crate::oidc::liveness::check(&state.store, &claims)
        .await
        .map_err(internal)?
    {
        Liveness::Live { user: Some(_), .. } => Ok(claims),
        Liveness::Live { user: None, .. } => Err(invalid_token("the token has no user")),
        Liveness::Dead(why) => Err(invalid_token(why)),
    }
}

#[get("/broker/{provider}/token")]
pub async fn broker_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let claims = match authorize(&req, &state).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the user has no identity at this provider",
        )
    };
    let Ok(provider_id) = ProviderId::parse(&path.into_inner()) else {
        return not_found();
    };
    // The client's allowed providers, as they are now, before anything about the provider or
    // the user's identity there is read: a client that may not use the provider learns
    // nothing about it, and removing a provider from a client ends its broker access at once.
    match crate::clients::repo::find(&state.store, &claims.client_id).await {
        Ok(Some(client)) if client.allows_provider(&provider_id) => {}
        Ok(Some(_)) => {
            return error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "this client is not allowed to use this provider",
            );
        }
        Ok(None) => return invalid_token("the token's client no longer exists"),
        Err(e) => return internal(e),
    }
    let provider = match crate::providers::repo::find(&state.store, provider_id.as_str()).await {
        Ok(Some(p)) if p.enabled => p,
        Ok(_) => return not_found(),
        Err(e) => return internal(e),
    };
    let which = crate::vault::Which::UserAt(&claims.sub, provider.id.as_str());
    let vaulted = match crate::vault::find(&state.store, &state.sealer, which).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_found(),
        Err(e) => return internal(e),
    };
    match refresh_identity(state.vault(), &provider, vaulted, Want::FreshToken).await {
        Ok(Refreshed::Fresh(v)) => match v.tokens() {
            Some(t) if !t.access_token.expose_secret().is_empty() => served(t),
            _ => error(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "the provider refreshed without issuing an access token",
            ),
        },
        Ok(Refreshed::Unrefreshable(_, why) | Refreshed::NeedsLogin(why)) => login_required(why),
        Ok(Refreshed::Failed(e)) => error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            &format!("the upstream refresh failed: {}", e.reason()),
        ),
        Ok(Refreshed::Busy) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "another refresh of this token is still running; try again",
        ),
        Err(e) => internal(e),
    }
}
