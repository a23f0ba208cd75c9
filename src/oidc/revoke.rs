//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662).
//!
//! Revoking a refresh token ends its whole family; revoking an access token puts its `jti`
//! on the revocation list until it would have expired. Unknown tokens revoke "successfully".
//!
//! Introspection tells a client about a token only when the token concerns it: an access
//! token issued to it or naming it as audience, a refresh token issued to it (and only while
//! the client still allows the provider its login came through). To anyone else every token
//! is `active: false`, so a client cannot probe others' tokens. An access
//! token is active exactly when `/userinfo` would accept it (`oidc::liveness`); an active user
//! token with the `openid` scope also carries the user claims that `/userinfo` would answer
//! (`tokens::user_claims`: its scopes, and the claim rules of the client it was issued to, as
//! they are now), never in place of an introspection member.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde_json::{Value, json};

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::liveness::{self, Liveness};
use super::scope::Scope;
use super::token::no_store;
use super::tokens::{user_claims, verify_access};
use crate::clients::Client;
use crate::crypto::TokenDigest;
use crate::grants::{refresh, revocations};
use crate::state::AppState;
use crate::store;
use crate::users;

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

#[post("/revoke")]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (client, form) = match client_auth::authenticated(&req, &state, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return OAuthError::new(ErrorCode::InvalidRequest, "token is required").response();
    };
    let now = store::now();
    let result = if looks_like_jwt(token) {
        match verify_access(&state, token, false).await {
            Ok(c) if c.client_id == client.client_id.as_str() && c.exp > now => {
                revocations::revoke(&state.store, &c.jti, c.exp).await
            }
            _ => Ok(()),
        }
    } else {
        // A refresh token ends its family, but only for the client it was issued to.
        refresh::revoke_family_of(
            &state.store,
            &TokenDigest::of(token),
            client.client_id.as_str(),
        )
        .await
    };
    match result {
        Ok(()) => no_store(HttpResponse::Ok()).finish(),
        Err(e) => OAuthError::server(e).response(),
    }
}

#[post("/introspect")]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (client, form) = match client_auth::authenticated(&req, &state, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if client.is_public() {
        return OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "introspection is for confidential clients",
        )
        .response();
    }
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return OAuthError::new(ErrorCode::InvalidRequest, "token is required").response();
    };
    let answer = match introspection(&state, &client, token).await {
        Ok(v) => v,
        Err(e) => return OAuthError::server(e).response(),
    };
    no_store(HttpResponse::Ok()).json(answer)
}

async fn introspection(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<Value, crate::store::StoreError> {
    let inactive = json!({ "active": false });
    let now = store::now();
    if looks_like_jwt(token) {
        let Ok(c) = verify_access(state, token, true).await else {
            return Ok(inactive);
        };
        let caller = client.client_id.as_str();
        if c.client_id != caller && c.aud != caller {
            return Ok(inactive);
        }
        let (user, token_client) = match liveness::check(&state.store, &c).await? {
            Liveness::Live { user, client } => (user, client),
            Liveness::Dead(_) => return Ok(inactive),
        };
        let mut answer = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "exp": c.exp,
            "iat": c.iat,
            "jti": c.jti,
        });
        let scope = Scope::parse(&c.scope).unwrap_or_default();
        if let (Some(user), Some(members)) = (user, answer.as_object_mut())
            && scope.contains("openid")
        {
            for (name, value) in user_claims(&user, &scope, &token_client) {
                members.entry(name).or_insert(value);
            }
        }
        return Ok(answer);
    }
    let Some(token) = refresh::find(&state.store, &TokenDigest::of(token)).await? else {
        return Ok(inactive);
    };
    // Only the client a refresh token belongs to learns about it.
    if token.client_id != client.client_id.as_str()
        || token.expires_at <= now
        || token.rotated_at.is_some()
        || token.revoked_at.is_some()
        || !users::repo::is_active(&state.store, &token.user_id).await?
    {
        return Ok(inactive);
    }
    // Active exactly when the refresh grant could use it: not when the login behind it came
    // through a provider the client no longer allows.
    let identity = users::identities::grant_state(&state.store, &token.identity_id).await?;
    if !identity.is_some_and(|i| client.allows_provider_named(&i.provider_id)) {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true,
        "token_type": "refresh_token",
        "client_id": token.client_id,
        "sub": token.user_id,
        "scope": token.scope,
        "iat": token.created_at,
        "exp": token.expires_at,
        "iss": state.settings.server.issuer.as_str(),
    }))
}
