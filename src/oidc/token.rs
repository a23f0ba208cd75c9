//! `POST /token`: authorization_code, refresh_token and client_credentials grants.
//!
//! Hot paths are short: a code is claimed by one conditional UPDATE ... RETURNING (single
//! use is the database's doing, so two instances cannot both redeem it); client_credentials
//! needs only the client row.
//!
//! Refresh tokens rotate, and a chain never forks: the rotation is one conditional UPDATE in
//! a write transaction (the first of any number of racing requests wins), and its one
//! successor is kept sealed until the grace window ends, so that a retry inside the window
//! (a lost response, a burst of requests) gets that same successor, as Dex's `reuseInterval`
//! does. A rotated token presented after the window revokes its whole family and records
//! `token.reuse_detected`.
//!
//! Every grant checks the `resource` (RFC 8707) against the client's allowed resources, and
//! every user grant the provider the user signed in through against the client's allowed
//! providers as they are now (`invalid_grant` otherwise; a refresh token's family is revoked).

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Serialize;
use sqlx::AnyConnection;

use super::authorize::pkce_matches;
use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::scope::Scope;
use super::tokens::{self, AccessClaims, IdClaims};
use crate::clients::{Client, GrantType};
use crate::crypto::TokenDigest;
use crate::grants::refresh::{self, NewRefresh, Rotation};
use crate::grants::{codes, revocations};
use crate::state::AppState;
use crate::store::{self, StoreError};
use crate::users::{self, User};
use crate::vault::refresh::{Refreshed, Want, refresh_identity};

#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Why a grant for a login through a provider the client does not allow is refused.
const PROVIDER_NOT_ALLOWED: &str =
    "the user signed in through a provider this client is not allowed to use";

fn invalid_grant(text: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, text)
}

fn db(e: impl Into<StoreError>) -> OAuthError {
    OAuthError::server(e.into())
}

/// Parses a form body; a repeated parameter is an error (RFC 6749 3.2). More than one
/// `resource` (RFC 8707 allows several) is `invalid_target`: Portico issues a token for one.
pub fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            if k == "resource" {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "only one resource per request is supported",
                ));
            }
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("parameter `{k}` is repeated"),
            ));
        }
    }
    Ok(out)
}

pub fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}

#[post("/token")]
pub async fn token_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (client, form) = match client_auth::authenticated(&req, &state, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let result = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&state, &client, &form).await,
        Some("refresh_token") => refresh_token(&state, &client, &form).await,
        Some("client_credentials") => client_credentials(&state, &client, &form).await,
        None | Some("") => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "grant_type is required",
        )),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "supported grants: authorization_code, refresh_token, client_credentials",
        )),
    };
    match result {
        Ok(body) => no_store(HttpResponse::Ok()).json(body),
        Err(e) => e.response(),
    }
}

fn require_grant(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows_grant(grant) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use {}", grant.as_str()),
        ))
    }
}

/// What the tokens of one grant say.
struct Issue<'a> {
    client: &'a Client,
    /// `None` for client_credentials: the client is the subject.
    user: Option<&'a User>,
    scope: &'a Scope,
    resource: Option<&'a str>,
    auth_time: Option<i64>,
    nonce: Option<&'a str>,
    jti: String,
    now: i64,
}

/// The response with the access token and, for `openid` user grants, the ID token (the caller
/// adds a refresh token).
fn mint(state: &AppState, issue: &Issue<'_>) -> Result<TokenResponse, OAuthError> {
    let issuer = state.settings.server.issuer.as_str();
    let client_id = issue.client.client_id.as_str();
    let sub = issue.user.map_or(client_id, |u| u.id.as_str());
    let access = AccessClaims {
        iss: issuer.to_owned(),
        sub: sub.to_owned(),
        aud: issue.resource.unwrap_or(client_id).to_owned(),
        client_id: client_id.to_owned(),
        scope: issue.scope.to_string(),
        jti: issue.jti.clone(),
        iat: issue.now,
        exp: issue.now + issue.client.access_token_ttl,
        auth_time: issue.auth_time,
    };
    let access_token =
        tokens::sign_access(&state.keys, state.settings.oidc.access_token_alg, &access)
            .map_err(OAuthError::server)?;
    let id_token = match (issue.user, issue.scope.contains("openid")) {
        (Some(user), true) => {
            let alg = issue.client.id_token_alg;
            let claims = IdClaims {
                iss: issuer.to_owned(),
                sub: user.id.clone(),
                aud: client_id.to_owned(),
                exp: issue.now + issue.client.id_token_ttl,
                iat: issue.now,
                auth_time: issue.auth_time.unwrap_or(issue.now),
                nonce: issue.nonce.map(str::to_owned),
                at_hash: Some(tokens::at_hash(alg, &access_token)),
                azp: client_id.to_owned(),
                profile: tokens::user_claims(user, issue.scope, issue.client),
            };
            Some(tokens::sign_id(&state.keys, alg, &claims).map_err(OAuthError::server)?)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: issue.client.access_token_ttl,
        scope: issue.scope.to_string(),
        refresh_token: None,
        id_token,
    })
}

fn wants_refresh(client: &Client, scope: &Scope) -> bool {
    client.allows_grant(GrantType::RefreshToken) && scope.contains("offline_access")
}

/// An active user, or `invalid_grant`.
async fn active_user(state: &AppState, user_id: &str) -> Result<User, OAuthError> {
    active(users::repo::find(&state.store, user_id).await)
}

/// The user as read, if it exists and is enabled; else `invalid_grant`.
fn active(found: Result<Option<User>, StoreError>) -> Result<User, OAuthError> {
    found
        .map_err(db)?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_grant("the user is disabled"))
}

/// The authorization_code grant for `client`, authenticated by the caller: `/token` after client
/// authentication, or the admin's "Try a login" in-process (`admin::clients::try_login`), where
/// the code, its redirect URI and the PKCE verifier prove the flow is the admin's own.
pub(crate) async fn authorization_code(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, GrantType::AuthorizationCode)?;
    let code = form
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "code is required"))?;
    let digest = TokenDigest::of(code);
    let now = store::now();
    let jti = tokens::new_jti();
    let family_id = uuid::Uuid::new_v4().to_string();
    // Claim the code: the first redemption wins, and records which tokens it issues. The claim
    // and the refresh token it issues are one transaction, so that a replay racing this
    // redemption (at this instance or another) waits for it and then revokes both tokens.
    let issued = codes::Issued {
        access_jti: &jti,
        access_exp: now + client.access_token_ttl,
        family_id: &family_id,
    };
    let mut tx = state.store.begin_write().await.map_err(db)?;
    let Some(code) = codes::claim_in(&mut tx, &digest, &issued)
        .await
        .map_err(db)?
    else {
        // Ends the transaction first: on SQLite the reuse's own needs the one writer.
        tx.rollback().await.map_err(db)?;
        return Err(code_reuse(state, &digest).await);
    };
    // A code that fails a check is spent all the same (the claim is committed).
    let (user, scope, resource) = match check_code(&mut tx, client, form, &code, now).await {
        Ok(checked) => checked,
        Err(e) => {
            tx.commit().await.map_err(db)?;
            return Err(e);
        }
    };
    let refresh_token = if wants_refresh(client, &scope) {
        let scope_text = scope.to_string();
        let new = NewRefresh {
            family_id: &family_id,
            client_id: client.client_id.as_str(),
            user_id: &code.user_id,
            identity_id: &code.identity_id,
            session_id: Some(&code.session_id),
            scope: &scope_text,
            resource: resource.as_deref(),
            auth_time: code.auth_time,
            expires_at: now + client.refresh_token_ttl,
        };
        let token = refresh::new_token();
        refresh::insert_in(&mut tx, &new, &token)
            .await
            .map_err(db)?;
        Some(token)
    } else {
        None
    };
    tx.commit().await.map_err(db)?;
    let issue = Issue {
        client,
        user: Some(&user),
        scope: &scope,
        resource: resource.as_deref(),
        auth_time: Some(code.auth_time),
        nonce: code.nonce.as_deref(),
        jti,
        now,
    };
    Ok(TokenResponse {
        refresh_token,
        ..mint(state, &issue)?
    })
}

/// The checks of a claimed code against the token request: client, redirect URI, expiry,
/// resource, PKCE, and an active user (read on `conn`, the claim's transaction: a second
/// connection while holding one could exhaust the pool under load). The user, the granted
/// scope and the resource.
async fn check_code(
    conn: &mut AnyConnection,
    client: &Client,
    form: &HashMap<String, String>,
    code: &codes::Claimed,
    now: i64,
) -> Result<(User, Scope, Option<String>), OAuthError> {
    if code.client_id != client.client_id.as_str() {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if form.get("redirect_uri").map(String::as_str) != Some(code.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    if code.expires_at <= now {
        return Err(invalid_grant("the code has expired"));
    }
    let resource = super::resource::for_grant(
        client,
        code.resource.as_deref(),
        form.get("resource").map(String::as_str),
    )?
    .map(|r| r.as_str().to_owned());
    let verifier = form.get("code_verifier").filter(|v| !v.is_empty());
    match (&code.code_challenge, verifier) {
        (Some(c), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed || !pkce_matches(c, v) {
                return Err(invalid_grant("the PKCE code_verifier does not match"));
            }
        }
        (Some(_), None) => return Err(invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(invalid_grant(
                "code_verifier sent for a request without code_challenge",
            ));
        }
        (None, None) => {}
    }
    // The client's allowed providers as they are now: a code issued before an admin removed
    // the provider it came through is not redeemed. A client open to every provider needs no
    // read for it (a round trip saved on the hot path).
    if !client.allowed_providers.is_empty() {
        let provider = users::identities::provider_of_in(conn, &code.identity_id)
            .await
            .map_err(db)?
            .ok_or_else(|| invalid_grant("the user's identity no longer exists"))?;
        if !client.allows_provider_named(&provider) {
            return Err(invalid_grant(PROVIDER_NOT_ALLOWED));
        }
    }
    let user = active(users::repo::find_in(conn, &code.user_id).await)?;
    let scope = Scope::parse(&code.scope).unwrap_or_default();
    Ok((user, scope, resource))
}

/// A code that is unknown or already redeemed. Redeemed twice means it leaked: revoke what
/// the first redemption issued (RFC 6749 4.1.2).
async fn code_reuse(state: &AppState, digest: &TokenDigest) -> OAuthError {
    let result = async {
        let mut tx = state.store.begin_write().await?;
        let Some(spent) = codes::spent_in(&mut tx, digest).await? else {
            return Ok::<bool, StoreError>(false);
        };
        if let Some((jti, exp)) = &spent.access {
            revocations::revoke_in(&mut tx, jti, *exp).await?;
        }
        if let Some(family) = &spent.family_id {
            refresh::revoke_all_in(&mut tx, refresh::Owner::Family(family)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
    .await;
    match result {
        Ok(true) => {
            tracing::warn!("an authorization code was presented twice; its tokens are revoked");
            invalid_grant("the code was already used")
        }
        Ok(false) => invalid_grant("the code is invalid"),
        Err(e) => db(e),
    }
}

async fn refresh_token(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, GrantType::RefreshToken)?;
    let presented = form
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "refresh_token is required"))?;
    let digest = TokenDigest::of(presented);
    let now = store::now();
    let token = refresh::find(&state.store, &digest)
        .await
        .map_err(db)?
        .ok_or_else(|| invalid_grant("the refresh token is invalid"))?;
    if token.client_id != client.client_id.as_str() {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if token.revoked_at.is_some() {
        return Err(invalid_grant("the refresh token is revoked"));
    }
    if token.expires_at <= now {
        return Err(invalid_grant("the refresh token has expired"));
    }
    let grace = state.settings.oidc.refresh_grace_secs as i64;
    if let Some(rotated) = token.rotated_at
        && now - rotated > grace
    {
        refresh::revoke_family_for_reuse(&state.store, &token)
            .await
            .map_err(db)?;
        return Err(invalid_grant("the refresh token was already used"));
    }
    let identity = users::identities::grant_state(&state.store, &token.identity_id)
        .await
        .map_err(db)?
        .ok_or_else(|| invalid_grant("the user's identity no longer exists"))?;
    // The login behind this token came through a provider the client no longer allows (an
    // admin removed it from the list): refused before the provider is asked anything, and the
    // family revoked, so that putting the provider back later does not revive it.
    if !client.allows_provider_named(&identity.provider_id) {
        let mut conn = state.store.write_conn().await.map_err(db)?;
        refresh::revoke_all_in(&mut conn, refresh::Owner::Family(&token.family_id))
            .await
            .map_err(db)?;
        tracing::info!(
            client_id = %client.client_id,
            provider = %identity.provider_id,
            "refresh refused: the provider is not allowed for the client; family revoked"
        );
        return Err(invalid_grant(PROVIDER_NOT_ALLOWED));
    }
    let mut user = active_user(state, &token.user_id).await?;
    if identity.needs_login {
        return Err(invalid_grant(
            "the upstream sign-in has ended; the user must sign in again",
        ));
    }
    // One read of the provider serves the session limit and the upstream refresh.
    let provider = crate::providers::repo::find(&state.store, &identity.provider_id)
        .await
        .map_err(db)?;
    super::session_limit::check(state, provider.as_ref(), token.auth_time, now)?;
    let resource = super::resource::for_grant(
        client,
        token.resource.as_deref(),
        form.get("resource").map(String::as_str),
    )?;
    let granted = Scope::parse(&token.scope).unwrap_or_default();
    let scope = match form.get("scope").filter(|s| !s.is_empty()) {
        None => granted.clone(),
        Some(s) => {
            let asked = Scope::parse(s).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?;
            if !asked.is_subset_of(&granted) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh cannot widen the granted scope",
                ));
            }
            asked
        }
    };

    // Fresh claims from the provider, where it can refresh an identity (stored with the
    // upstream tokens before this returns). A retry of a token rotated moments ago skips it:
    // the rotation that won already asked.
    let trust_email = provider.as_ref().is_some_and(|p| p.trust_email);
    let claims_due =
        now - identity.claims_at >= state.settings.oidc.upstream_refresh_interval_secs as i64;
    let refreshed = if token.rotated_at.is_none() && identity.has_tokens && claims_due {
        refresh_upstream(state, provider, &token.identity_id).await?
    } else {
        None
    };
    if let Some(identity) = &refreshed {
        user.email = identity.email.clone();
        user.email_verified = users::vouched(identity, trust_email);
        user.name = identity.name.clone();
        user.picture = identity.picture.clone();
        user.groups = identity.groups.clone();
        user.extra_claims = identity.extra_claims.clone();
    }

    // The successor carries what the token carried.
    let successor = NewRefresh {
        family_id: &token.family_id,
        client_id: client.client_id.as_str(),
        user_id: &token.user_id,
        identity_id: &token.identity_id,
        session_id: token.session_id.as_deref(),
        scope: &token.scope,
        resource: token.resource.as_deref(),
        auth_time: token.auth_time,
        expires_at: now + client.refresh_token_ttl,
    };
    let refresh_token =
        match refresh::rotate(&state.store, &state.sealer, &digest, &successor, grace)
            .await
            .map_err(db)?
        {
            Rotation::Successor(token) => token,
            Rotation::Revoked => return Err(invalid_grant("the refresh token is revoked")),
            Rotation::Reused => return Err(invalid_grant("the refresh token was already used")),
        };

    let issue = Issue {
        client,
        user: Some(&user),
        scope: &scope,
        resource: resource.as_ref().map(|r| r.as_str()),
        auth_time: Some(token.auth_time),
        nonce: None,
        jti: tokens::new_jti(),
        now,
    };
    Ok(TokenResponse {
        refresh_token: Some(refresh_token),
        ..mint(state, &issue)?
    })
}

/// Asks the identity's provider for fresh claims through the refresh capability, under the
/// vault's lease (one upstream call per identity however many refreshes arrive at once).
/// `None` when the stored claims stand (the provider cannot refresh, or is down: the claims
/// of the last login are served, as Dex does); an error when the upstream grant is gone, so
/// that the downstream refresh fails too.
async fn refresh_upstream(
    state: &AppState,
    provider: Option<crate::providers::Provider>,
    identity_id: &str,
) -> Result<Option<crate::upstream::UpstreamIdentity>, OAuthError> {
    let provider = provider
        .filter(|p| p.enabled)
        .ok_or_else(|| invalid_grant("the user's sign-in provider is no longer available"))?;
    let which = crate::vault::Which::Id(identity_id);
    let Some(current) = crate::vault::find(&state.store, &state.sealer, which)
        .await
        .map_err(db)?
    else {
        return Err(invalid_grant("the user's identity no longer exists"));
    };
    match refresh_identity(state.vault(), &provider, current, Want::FreshClaims)
        .await
        .map_err(db)?
    {
        Refreshed::Fresh(v) => Ok(Some(v.identity)),
        Refreshed::Unrefreshable(..) => Ok(None),
        Refreshed::NeedsLogin(_) => Err(invalid_grant(
            "the upstream sign-in has ended; the user must sign in again",
        )),
        Refreshed::Failed(e) => {
            tracing::warn!(provider = %provider.id, reason = %e.reason(), "serving the stored claims");
            Ok(None)
        }
        Refreshed::Busy => Ok(None),
    }
}

async fn client_credentials(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    require_grant(client, GrantType::ClientCredentials)?;
    let scope = Scope::parse(form.get("scope").map(String::as_str).unwrap_or(""))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e))?;
    if !scope.within(&client.scopes) || scope.contains("openid") || scope.contains("offline_access")
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "a requested scope is not allowed for this client",
        ));
    }
    let asked: Vec<&str> = form
        .get("resource")
        .map(String::as_str)
        .into_iter()
        .collect();
    let resource = super::resource::requested(client, &asked)?;
    let issue = Issue {
        client,
        user: None,
        scope: &scope,
        resource: resource.as_ref().map(|r| r.as_str()),
        auth_time: None,
        nonce: None,
        jti: tokens::new_jti(),
        now: store::now(),
    };
    mint(state, &issue)
}
