//! `GET /broker/{provider}/token`: a fresh upstream access token for the bearer's user.
//!
//! The bearer is a Portico access token (verified offline as `/userinfo` does) with the scope
//! `broker:read-token`. A stored token expiring within [`REFRESH_MARGIN_SECS`] is refreshed
//! first, through the connector's refresh capability, by whichever request claims the
//! identity's lease; the others wait for its result. A token is never served stale: a
//! refresh that fails is an error, and `invalid_grant` marks the identity for a new login.

use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use secrecy::ExposeSecret;
use serde_json::json;

use super::Vaulted;
use crate::keys::JwtType;
use crate::keys::jwt::Expect;
use crate::oidc::scope::Scope;
use crate::oidc::tokens::AccessClaims;
use crate::oidc::userinfo::bearer_error;
use crate::state::AppState;
use crate::store::{self, StoreError};
use crate::upstream::{ProviderId, UpstreamError, UpstreamTokens};

/// The scope a Portico access token needs here.
pub const BROKER_SCOPE: &str = "broker:read-token";
/// A stored token expiring within this many seconds is refreshed before it is served.
pub const REFRESH_MARGIN_SECS: i64 = 60;
/// How long a request waits for another's refresh before giving up.
const WAIT_FOR_REFRESH: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

fn error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": error, "error_description": description }))
}

fn login_required(description: &str) -> HttpResponse {
    error(StatusCode::CONFLICT, "login_required", description)
}

fn internal(e: StoreError) -> HttpResponse {
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
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="portico""#))
                .finish()
        })?;
    let expect = Expect {
        issuer: state.settings.server.issuer.as_str(),
        audience: None,
        typ: JwtType::AccessToken,
        require_unexpired: true,
    };
    let claims: AccessClaims = state
        .keys
        .verify(token, &expect)
        .await
        .map_err(|e| bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &e.to_string()))?;
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
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $2) + u.disabled \
         FROM users u WHERE u.id = $1",
    )
    .bind(&claims.sub)
    .bind(&claims.jti)
    .fetch_optional(state.store.pool())
    .await
    .map_err(|e| internal(e.into()))?;
    if live != Some(0) {
        return Err(bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token is revoked or its user is disabled",
        ));
    }
    Ok(claims)
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
    let provider = match state.store.provider(provider_id.as_str()).await {
        Ok(Some(p)) if p.enabled => p,
        Ok(_) => return not_found(),
        Err(e) => return internal(e),
    };
    let waiting_since = Instant::now();
    loop {
        let vaulted = match state
            .store
            .vaulted(&state.sealer, &claims.sub, &provider.id)
            .await
        {
            Ok(Some(v)) => v,
            Ok(None) => return not_found(),
            Err(e) => return internal(e),
        };
        if vaulted.needs_login {
            return login_required(
                "the upstream grant has ended; the user must sign in at the provider again",
            );
        }
        if !vaulted.expires_within(REFRESH_MARGIN_SECS, store::now()) {
            return served(vaulted.tokens().expect("a fresh token is stored"));
        }
        match state.store.claim_refresh_lease(&vaulted.identity_id).await {
            Ok(true) => return refresh(&state, &provider, &claims.sub, &provider_id).await,
            Ok(false) if waiting_since.elapsed() < WAIT_FOR_REFRESH => {
                tokio::time::sleep(POLL).await;
            }
            Ok(false) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "another refresh of this token is still running; try again",
                );
            }
            Err(e) => return internal(e),
        }
    }
}

/// With the lease held: re-reads the identity (a refresh may have finished just before the
/// lease was claimed), refreshes upstream, stores the result and ends the lease in one
/// transaction.
async fn refresh(
    state: &AppState,
    provider: &crate::providers::Provider,
    user_id: &str,
    provider_id: &ProviderId,
) -> HttpResponse {
    let vaulted: Vaulted = match state
        .store
        .vaulted(&state.sealer, user_id, provider_id)
        .await
    {
        Ok(Some(v)) => v,
        Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", "the identity is gone"),
        Err(e) => return internal(e),
    };
    let id = vaulted.identity_id.clone();
    let release = |needs_login: bool| {
        let store = state.store.clone();
        let id = id.clone();
        async move {
            if let Err(e) = store.release_refresh_lease(&id, needs_login).await {
                tracing::error!(error = %e, "broker: releasing the refresh lease failed");
            }
        }
    };
    if !vaulted.expires_within(REFRESH_MARGIN_SECS, store::now()) {
        release(false).await;
        return served(vaulted.tokens().expect("a fresh token is stored"));
    }
    if vaulted
        .tokens()
        .and_then(|t| t.refresh_token.as_ref())
        .is_none()
    {
        release(false).await;
        return login_required(
            "no upstream refresh token is stored; the user must sign in at the provider again",
        );
    }
    let connector = match state.connectors.connector(provider) {
        Ok(c) => c,
        Err(e) => {
            release(false).await;
            return internal(e);
        }
    };
    let Some(refresher) = connector.refresh() else {
        release(false).await;
        return login_required("this provider cannot refresh tokens; the user must sign in again");
    };
    let refreshed = match refresher.refresh_identity(&vaulted.identity).await {
        Ok(identity) => identity,
        Err(UpstreamError::InvalidGrant) => {
            release(true).await;
            tracing::info!(provider = %provider.id, identity = %id, "upstream grant ended");
            return login_required(
                "the upstream grant has ended (invalid_grant); the user must sign in at the \
                 provider again",
            );
        }
        Err(e) => {
            release(false).await;
            tracing::warn!(provider = %provider.id, reason = %e.reason(), "broker refresh failed");
            return error(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                &format!("the upstream refresh failed: {}", e.reason()),
            );
        }
    };
    let Some(tokens) = refreshed.tokens.clone() else {
        release(false).await;
        return error(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "the provider refreshed without issuing an access token",
        );
    };
    let stored = async {
        let mut tx = state.store.pool().begin().await?;
        crate::users::update_claims(&mut tx, &state.sealer, &vaulted.user_id, &id, &refreshed)
            .await?;
        super::end_lease(&mut tx, &id).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(())
    }
    .await;
    match stored {
        Ok(()) => served(&tokens),
        Err(e) => {
            release(false).await;
            internal(e)
        }
    }
}
