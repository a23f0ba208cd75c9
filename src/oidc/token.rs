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
//! Every grant checks the `resource` (RFC 8707) against the client's allowed resources.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use super::authorize::pkce_matches;
use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::ratelimit::peer_ip;
use super::scope::Scope;
use super::tokens::{self, AccessClaims, IdClaims, ProfileClaims};
use crate::clients::{Client, GrantType};
use crate::crypto::{SealTarget, TokenDigest, random_token};
use crate::events::{self, EventType};
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
    if let Some(limited) = state.limits.check_ip(peer_ip(&req)) {
        return limited;
    }
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return e.response(),
    };
    let client = match client_auth::authenticate(&req, &form, &state).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
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

/// Signs the access token and, for `openid` user grants, the ID token.
fn mint(state: &AppState, issue: &Issue<'_>) -> Result<(String, Option<String>), OAuthError> {
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
                profile: ProfileClaims::for_scope(user, issue.scope),
            };
            Some(tokens::sign_id(&state.keys, alg, &claims).map_err(OAuthError::server)?)
        }
        _ => None,
    };
    Ok((access_token, id_token))
}

fn wants_refresh(client: &Client, scope: &Scope) -> bool {
    client.allows_grant(GrantType::RefreshToken) && scope.contains("offline_access")
}

struct NewRefresh<'a> {
    family_id: &'a str,
    client: &'a Client,
    user_id: &'a str,
    identity_id: &'a str,
    session_id: Option<&'a str>,
    scope: &'a Scope,
    resource: Option<&'a str>,
    auth_time: i64,
}

fn new_refresh_token() -> String {
    random_token("rt_").expose_secret().to_owned()
}

async fn insert_refresh(
    conn: &mut sqlx::AnyConnection,
    r: &NewRefresh<'_>,
    token: String,
) -> Result<String, StoreError> {
    let now = store::now();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_digest, family_id, client_id, user_id, identity_id, \
         session_id, scope, resource, auth_time, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(TokenDigest::of(&token).as_bytes().to_vec())
    .bind(r.family_id)
    .bind(r.client.client_id.as_str())
    .bind(r.user_id)
    .bind(r.identity_id)
    .bind(r.session_id)
    .bind(r.scope.to_string())
    .bind(r.resource)
    .bind(r.auth_time)
    .bind(now)
    .bind(now + r.client.refresh_token_ttl)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

async fn authorization_code(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, GrantType::AuthorizationCode)?;
    let code = form
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "code is required"))?;
    let digest = TokenDigest::of(code).as_bytes().to_vec();
    let now = store::now();
    let jti = tokens::new_jti();
    let family_id = uuid::Uuid::new_v4().to_string();
    // Claim the code: the first redemption wins, and records which tokens it issues.
    let row = sqlx::query(
        "UPDATE auth_codes SET used_at = $1, access_jti = $2, access_exp = $3, family_id = $4 \
         WHERE code_digest = $5 AND used_at IS NULL RETURNING client_id, redirect_uri, user_id, \
         identity_id, session_id, scope, nonce, code_challenge, resource, auth_time, expires_at",
    )
    .bind(now)
    .bind(&jti)
    .bind(now + client.access_token_ttl)
    .bind(&family_id)
    .bind(&digest)
    .fetch_optional(state.store.pool())
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Err(code_reuse(state, &digest).await);
    };
    let get = |i: usize| -> Result<Option<String>, OAuthError> { row.try_get(i).map_err(db) };
    let code_client: String = row.try_get(0).map_err(db)?;
    let redirect_uri: String = row.try_get(1).map_err(db)?;
    let user_id: String = row.try_get(2).map_err(db)?;
    let identity_id: String = row.try_get(3).map_err(db)?;
    let session_id: String = row.try_get(4).map_err(db)?;
    let scope_raw: String = row.try_get(5).map_err(db)?;
    let nonce = get(6)?;
    let challenge = get(7)?;
    let resource = get(8)?;
    let auth_time: i64 = row.try_get(9).map_err(db)?;
    let expires_at: i64 = row.try_get(10).map_err(db)?;

    if code_client != client.client_id.as_str() {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if form.get("redirect_uri") != Some(&redirect_uri) {
        return Err(invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    if expires_at <= now {
        return Err(invalid_grant("the code has expired"));
    }
    let resource = super::resource::for_grant(
        client,
        resource.as_deref(),
        form.get("resource").map(String::as_str),
    )?
    .map(|r| r.as_str().to_owned());
    let verifier = form.get("code_verifier").filter(|v| !v.is_empty());
    match (&challenge, verifier) {
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
    let user = state
        .store
        .user(&user_id)
        .await
        .map_err(db)?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_grant("the user is disabled"))?;
    let scope = Scope::parse(&scope_raw).unwrap_or_default();
    let issue = Issue {
        client,
        user: Some(&user),
        scope: &scope,
        resource: resource.as_deref(),
        auth_time: Some(auth_time),
        nonce: nonce.as_deref(),
        jti,
        now,
    };
    let (access_token, id_token) = mint(state, &issue)?;
    let refresh_token = if wants_refresh(client, &scope) {
        let mut conn = state.store.pool().acquire().await.map_err(db)?;
        let new = NewRefresh {
            family_id: &family_id,
            client,
            user_id: &user_id,
            identity_id: &identity_id,
            session_id: Some(&session_id),
            scope: &scope,
            resource: resource.as_deref(),
            auth_time,
        };
        Some(
            insert_refresh(&mut conn, &new, new_refresh_token())
                .await
                .map_err(db)?,
        )
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: client.access_token_ttl,
        scope: scope.to_string(),
        refresh_token,
        id_token,
    })
}

/// A code that is unknown or already redeemed. Redeemed twice means it leaked: revoke what
/// the first redemption issued (RFC 6749 4.1.2).
async fn code_reuse(state: &AppState, digest: &[u8]) -> OAuthError {
    let result = async {
        let mut tx = state.store.begin_write().await?;
        let row = sqlx::query(
            "SELECT access_jti, access_exp, family_id FROM auth_codes \
             WHERE code_digest = $1 AND used_at IS NOT NULL",
        )
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok::<bool, StoreError>(false);
        };
        let jti: Option<String> = row.try_get(0)?;
        let exp: Option<i64> = row.try_get(1)?;
        let family: Option<String> = row.try_get(2)?;
        if let (Some(jti), Some(exp)) = (jti, exp) {
            sqlx::query(
                "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(exp)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(family) = family {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 \
                 AND revoked_at IS NULL",
            )
            .bind(store::now())
            .bind(family)
            .execute(&mut *tx)
            .await?;
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
    let row = sqlx::query(
        "SELECT r.family_id, r.client_id, r.user_id, r.identity_id, r.session_id, r.scope, \
         r.resource, r.auth_time, r.expires_at, r.rotated_at, r.revoked_at, \
         u.id, u.email, u.email_verified, u.name, u.picture, u.groups, u.disabled, \
         i.provider_id, i.needs_login, \
         CASE WHEN i.access_token IS NULL AND i.refresh_token IS NULL THEN 0 ELSE 1 END, \
         i.updated_at \
         FROM refresh_tokens r JOIN users u ON u.id = r.user_id \
         JOIN identities i ON i.id = r.identity_id WHERE r.token_digest = $1",
    )
    .bind(digest.as_bytes().to_vec())
    .fetch_optional(state.store.pool())
    .await
    .map_err(db)?
    .ok_or_else(|| invalid_grant("the refresh token is invalid"))?;
    let family_id: String = row.try_get(0).map_err(db)?;
    let token_client: String = row.try_get(1).map_err(db)?;
    let user_id: String = row.try_get(2).map_err(db)?;
    let identity_id: String = row.try_get(3).map_err(db)?;
    let session_id: Option<String> = row.try_get(4).map_err(db)?;
    let scope_raw: String = row.try_get(5).map_err(db)?;
    let granted_resource: Option<String> = row.try_get(6).map_err(db)?;
    let auth_time: i64 = row.try_get(7).map_err(db)?;
    let expires_at: i64 = row.try_get(8).map_err(db)?;
    let rotated_at: Option<i64> = row.try_get(9).map_err(db)?;
    let revoked_at: Option<i64> = row.try_get(10).map_err(db)?;
    let mut user = users::user_from_row(&row).map_err(db)?;
    let provider_id: String = row.try_get(18).map_err(db)?;
    let needs_login = row.try_get::<i64, _>(19).map_err(db)? != 0;
    let has_upstream_tokens = row.try_get::<i64, _>(20).map_err(db)? != 0;
    let claims_updated_at: i64 = row.try_get(21).map_err(db)?;

    if token_client != client.client_id.as_str() {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if revoked_at.is_some() {
        return Err(invalid_grant("the refresh token is revoked"));
    }
    if expires_at <= now {
        return Err(invalid_grant("the refresh token has expired"));
    }
    let grace = state.settings.oidc.refresh_grace_secs as i64;
    if let Some(rotated) = rotated_at
        && now - rotated > grace
    {
        let mut tx = state.store.begin_write().await.map_err(db)?;
        revoke_family_in(&mut tx, &family_id, &user_id, client)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        return Err(invalid_grant("the refresh token was already used"));
    }
    if user.disabled {
        return Err(invalid_grant("the user is disabled"));
    }
    if needs_login {
        return Err(invalid_grant(
            "the upstream sign-in has ended; the user must sign in again",
        ));
    }
    // One read of the provider serves the session limit and the upstream refresh.
    let provider = state.store.provider(&provider_id).await.map_err(db)?;
    super::session_limit::check(state, provider.as_ref(), auth_time, now)?;
    let resource = super::resource::for_grant(
        client,
        granted_resource.as_deref(),
        form.get("resource").map(String::as_str),
    )?;
    let granted = Scope::parse(&scope_raw).unwrap_or_default();
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
        now - claims_updated_at >= state.settings.oidc.upstream_refresh_interval_secs as i64;
    let refreshed = if rotated_at.is_none() && has_upstream_tokens && claims_due {
        refresh_upstream(state, provider, &identity_id).await?
    } else {
        None
    };
    if let Some(identity) = &refreshed {
        user.email = identity.email.clone();
        user.email_verified = users::vouched(identity, trust_email);
        user.name = identity.name.clone();
        user.picture = identity.picture.clone();
        user.groups = identity.groups.clone();
    }

    let successor = NewRefresh {
        family_id: &family_id,
        client,
        user_id: &user_id,
        identity_id: &identity_id,
        session_id: session_id.as_deref(),
        scope: &granted,
        resource: granted_resource.as_deref(),
        auth_time,
    };
    let refresh_token = match rotate(state, &digest, &successor, now, grace)
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
        auth_time: Some(auth_time),
        nonce: None,
        jti: tokens::new_jti(),
        now,
    };
    let (access_token, id_token) = mint(state, &issue)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: client.access_token_ttl,
        scope: scope.to_string(),
        refresh_token: Some(refresh_token),
        id_token,
    })
}

/// What rotating a presented refresh token came to.
enum Rotation {
    /// The one successor: minted now, or (a retry inside the grace window) the one minted by
    /// the rotation that won.
    Successor(String),
    Revoked,
    /// Rotated before the grace window: the family is now revoked.
    Reused,
}

/// The sealing target of a rotated token's successor: bound to the rotated token's digest.
fn successor_target(id: &str) -> SealTarget<'_> {
    SealTarget::new("refresh_successors", "successor", id)
}

/// Rotates the token with `digest` in one write transaction. The conditional UPDATE lets one
/// request win however many race (on PostgreSQL the others wait for its row lock, then match
/// nothing); the winner stores the successor and keeps it sealed for the grace window. The
/// others read, in the same transaction, what the winner left: the successor to answer with,
/// or a revocation.
async fn rotate(
    state: &AppState,
    digest: &TokenDigest,
    successor: &NewRefresh<'_>,
    now: i64,
    grace: i64,
) -> Result<Rotation, StoreError> {
    let id = digest.to_hex();
    let mut tx = state.store.begin_write().await?;
    let claimed = sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_digest = $2 \
         AND rotated_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(digest.as_bytes().to_vec())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 1 {
        let token = insert_refresh(&mut tx, successor, new_refresh_token()).await?;
        sqlx::query(
            "INSERT INTO refresh_successors (id, successor, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(state.sealer.seal_str(&token, successor_target(&id)))
        .bind(now + grace)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Rotation::Successor(token));
    }

    let row = sqlx::query(
        "SELECT r.rotated_at, r.revoked_at, s.successor FROM refresh_tokens r \
         LEFT JOIN refresh_successors s ON s.id = $1 WHERE r.token_digest = $2",
    )
    .bind(&id)
    .bind(digest.as_bytes().to_vec())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Revoked);
    };
    let rotated_at: Option<i64> = row.try_get(0)?;
    let revoked_at: Option<i64> = row.try_get(1)?;
    let sealed: Option<Vec<u8>> = row.try_get(2)?;
    let outcome = match (revoked_at, rotated_at, sealed) {
        (Some(_), ..) => Rotation::Revoked,
        (None, Some(rotated), Some(sealed)) if now - rotated <= grace => Rotation::Successor(
            state
                .sealer
                .open_string(&sealed, successor_target(&id))?
                .expose_secret()
                .to_owned(),
        ),
        // Rotated too long ago, or (a rotation from before successors were kept) with no
        // successor to give: reuse.
        _ => {
            revoke_family_in(
                &mut tx,
                successor.family_id,
                successor.user_id,
                successor.client,
            )
            .await?;
            Rotation::Reused
        }
    };
    tx.commit().await?;
    Ok(outcome)
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
    let Some(current) = state
        .store
        .vaulted_by_id(&state.sealer, identity_id)
        .await
        .map_err(db)?
    else {
        return Err(invalid_grant("the user's identity no longer exists"));
    };
    match refresh_identity(state, &provider, current, Want::FreshClaims)
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

/// Revokes a refresh token family whose rotated member came back (after the grace window) and
/// records `token.reuse_detected`, in the caller's transaction.
async fn revoke_family_in(
    conn: &mut sqlx::AnyConnection,
    family_id: &str,
    user_id: &str,
    client: &Client,
) -> Result<(), StoreError> {
    let revoked = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(store::now())
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    if revoked.rows_affected() > 0 {
        events::record(
            &mut *conn,
            EventType::TokenReuseDetected,
            json!({ "user_id": user_id, "client_id": client.client_id.as_str() }),
        )
        .await?;
        tracing::warn!(client_id = %client.client_id, "refresh token reuse: family revoked");
    }
    Ok(())
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
    let (access_token, _) = mint(state, &issue)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: client.access_token_ttl,
        scope: scope.to_string(),
        refresh_token: None,
        id_token: None,
    })
}
