//! `GET /broker/{provider}/token`: a fresh upstream access token for the bearer's user.
//!
//! The bearer is a Portico access token (verified offline as `/userinfo` does) with the scope
//! `broker:read-token`, issued to a client that allows the provider (`access_denied`
//! otherwise). A stored token expiring within a minute is refreshed
//! first (`super::refresh`: one upstream call per identity under the lease in its row). A
//! token is never served stale: a refresh that fails is an error, and `invalid_grant` marks
//! the identity for a new login.
//!
//! `?scope=a b` names the upstream scopes the caller needs. When the stored grant lacks some,
//! and the admin lets each of them be asked for at this provider (its `incremental_scopes`;
//! the caller alone never decides), the answer is `insufficient_scope` with an `upgrade_uri`:
//! a ticket (`vault::upgrades`) bound to this user's identity, the scopes, the client and the
//! return URI (`&redirect_uri=`, one of the client's registered ones), which only that user,
//! signed in to Portico, can spend (`super::connect`).

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::clients::Client;
use crate::providers::Provider;
use crate::vault::Vaulted;
use crate::vault::upgrades::{self, NewUpgrade};

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
/// At most this many upstream scopes in one request's `scope`.
const MAX_SCOPES: usize = 50;

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

/// What the request asks for besides a token.
struct Needs {
    /// The upstream scopes the token must carry.
    scopes: Vec<String>,
    /// Where the user lands after adding missing ones.
    return_uri: Option<String>,
}

/// The request's `scope` (scope tokens, each once, at most [`MAX_SCOPES`]) and `redirect_uri`;
/// `None` when `scope` is malformed.
fn needs(query: &HashMap<String, String>) -> Option<Needs> {
    let mut scopes: Vec<String> = Vec::new();
    for s in query.get("scope").map_or("", String::as_str).split(' ') {
        if s.is_empty() || scopes.iter().any(|x| x == s) {
            continue;
        }
        if !crate::upstream::kinds::is_scope_token(s) || scopes.len() == MAX_SCOPES {
            return None;
        }
        scopes.push(s.to_owned());
    }
    let return_uri = query.get("redirect_uri").cloned();
    Some(Needs { scopes, return_uri })
}

/// The scopes the stored grant has.
pub(crate) fn granted(v: &Vaulted) -> Vec<String> {
    let scope = v.tokens().and_then(|t| t.scope.as_deref()).unwrap_or("");
    scope
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The answer to a request for scopes the grant lacks (`missing`): refused unless the admin
/// lets each be asked for at this provider, else a ticket for the user to add them.
async fn upgrade(
    req: &HttpRequest,
    state: &AppState,
    client: &Client,
    provider: &Provider,
    vaulted: &Vaulted,
    missing: &[String],
    return_uri: Option<&str>,
) -> HttpResponse {
    if let Some(s) = missing
        .iter()
        .find(|s| !provider.incremental_scopes.contains(s))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "the scope {s} is not granted and may not be requested at this provider (its \
                 incremental_scopes)"
            ),
        );
    }
    let return_uri = match return_uri {
        Some(raw) => match client.redirect_uri(raw) {
            Some(uri) => Some(uri.as_str().to_owned()),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is not a registered redirect URI of this client",
                );
            }
        },
        None => None,
    };
    let new = NewUpgrade {
        user_id: &vaulted.user_id,
        identity_id: &vaulted.identity_id,
        provider_id: provider.id.as_str(),
        client_id: client.client_id.as_str(),
        requested: missing,
        return_uri: return_uri.as_deref(),
    };
    let ip = crate::ops::client_ip::client_ip_text(req);
    let ticket = match upgrades::create(&state.store, &new, ip.as_deref()).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let uri = format!(
        "{}/broker/{}/connect?ticket={}",
        state.settings.server.issuer.as_str(),
        provider.id,
        ticket.expose_secret()
    );
    let scope = missing.join(" ");
    let description = "the upstream grant lacks a scope; send the user to upgrade_uri to add it";
    HttpResponse::Forbidden()
        .insert_header((
            header::WWW_AUTHENTICATE,
            format!(
                r#"Bearer realm="portico", error="insufficient_scope", error_description="{description}", scope="{scope}""#
            ),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "error": "insufficient_scope",
            "error_description": description,
            "scope": scope,
            "upgrade_uri": uri,
            "expires_in": upgrades::TICKET_SECS,
        }))
}

#[get("/broker/{provider}/token")]
pub async fn broker_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
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
    let client = match crate::clients::repo::find(&state.store, &claims.client_id).await {
        Ok(Some(client)) if client.allows_provider(&provider_id) => client,
        Ok(Some(_)) => {
            return error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "this client is not allowed to use this provider",
            );
        }
        Ok(None) => return invalid_token("the token's client no longer exists"),
        Err(e) => return internal(e),
    };
    let Some(needs) = needs(&query) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope must be at most 50 scope tokens separated by spaces",
        );
    };
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
    let have = granted(&vaulted);
    let missing: Vec<String> = (needs.scopes.into_iter())
        .filter(|s| !have.contains(s))
        .collect();
    if !missing.is_empty() {
        let return_uri = needs.return_uri.as_deref();
        return upgrade(
            &req, &state, &client, &provider, &vaulted, &missing, return_uri,
        )
        .await;
    }
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
