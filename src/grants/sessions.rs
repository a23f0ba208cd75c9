//! SSO sessions: a row behind the session cookie, found by the digest of the cookie's random
//! token. Idle and absolute timeouts; ended by logout, by admins and when their provider is
//! deleted, each ending recorded as `session.ended`. This module owns `sso_sessions`; the
//! cookie itself is the web layer's (`oidc::session`).

use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::crypto::TokenDigest;
use crate::store::{self, Store, StoreError};
use crate::webhooks::events::{self, EventType};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub identity_id: String,
    pub provider_id: String,
    /// When the user authenticated (the provider's time when it says, else the login's).
    pub auth_time: i64,
    /// When the provider itself said the user authenticated (an ID token's `auth_time`, a
    /// SAML AuthnInstant); `None` when it did not say. Only this shows a recent sign-in for
    /// account changes: a provider may answer from its own old session without asking anyone.
    pub stated_auth_time: Option<i64>,
    /// The identity's upstream grant has ended (an upstream refresh met `invalid_grant`): the
    /// session may not answer a new authorization without a new upstream login. Filled in by
    /// the caller from the identity.
    #[sqlx(default)]
    pub needs_login: bool,
}

/// What a new session is.
pub struct NewSession<'a> {
    pub token: &'a str,
    pub user_id: &'a str,
    pub identity_id: &'a str,
    pub provider_id: &'a str,
    pub auth_time: i64,
    pub stated_auth_time: Option<i64>,
    pub expires_at: i64,
}

/// The columns a [`Session`] is read from.
const RETURNED: &str = "id, user_id, identity_id, provider_id, auth_time, stated_auth_time";

/// Starts a session in the caller's transaction.
pub async fn start_in(
    conn: &mut AnyConnection,
    new: &NewSession<'_>,
) -> Result<Session, StoreError> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO sso_sessions (id, token_digest, user_id, identity_id, provider_id, \
         auth_time, stated_auth_time, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {RETURNED}"
    ))
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(TokenDigest::of(new.token).as_bytes().to_vec())
    .bind(new.user_id)
    .bind(new.identity_id)
    .bind(new.provider_id)
    .bind(new.auth_time)
    .bind(new.stated_auth_time)
    .bind(store::now())
    .bind(new.expires_at)
    .fetch_one(&mut *conn)
    .await?)
}

/// The live session behind `token`, touched (its idle timer restarted): not ended, not
/// expired, and used within `idle_secs`.
pub async fn touch(
    store: &Store,
    token: &str,
    idle_secs: u64,
) -> Result<Option<Session>, StoreError> {
    let now = store::now();
    Ok(sqlx::query_as(&format!(
        "UPDATE sso_sessions SET last_seen_at = $1 WHERE token_digest = $2 \
         AND ended_at IS NULL AND expires_at > $1 AND last_seen_at > $3 \
         RETURNING {RETURNED}"
    ))
    .bind(now)
    .bind(TokenDigest::of(token).as_bytes().to_vec())
    .bind(now - idle_secs as i64)
    .fetch_optional(&mut *store.write_conn().await?)
    .await?)
}

/// Which live sessions to end.
enum Which<'a> {
    Token(Vec<u8>),
    User(&'a str),
    Provider(&'a str),
    Identity(&'a str),
}

/// Ends the session behind `token` and records `session.ended`; false if none was live.
pub async fn end(store: &Store, token: &str, reason: &str) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let digest = TokenDigest::of(token).as_bytes().to_vec();
    let ended = end_matching_in(&mut tx, Which::Token(digest), reason).await?;
    tx.commit().await?;
    Ok(ended > 0)
}

/// Ends every live session of a user (admin revocation, disabling), in the caller's
/// transaction. Returns how many ended.
pub async fn end_user_sessions_in(
    conn: &mut AnyConnection,
    user_id: &str,
    reason: &str,
) -> Result<u64, StoreError> {
    end_matching_in(conn, Which::User(user_id), reason).await
}

/// Ends every live session that came through `provider_id` (it is being deleted).
pub async fn end_provider_sessions_in(
    conn: &mut AnyConnection,
    provider_id: &str,
    reason: &str,
) -> Result<u64, StoreError> {
    end_matching_in(conn, Which::Provider(provider_id), reason).await
}

/// Ends every live session that came through identity `identity_id` (it is being unlinked).
pub async fn end_identity_sessions_in(
    conn: &mut AnyConnection,
    identity_id: &str,
    reason: &str,
) -> Result<u64, StoreError> {
    end_matching_in(conn, Which::Identity(identity_id), reason).await
}

/// Gives live session `id` the cookie token `token`: the old token's digest is replaced, so
/// the old cookie finds nothing any more.
pub async fn rotate_token_in(
    conn: &mut AnyConnection,
    id: &str,
    token: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sso_sessions SET token_digest = $1 WHERE id = $2 AND ended_at IS NULL")
        .bind(TokenDigest::of(token).as_bytes().to_vec())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records that the user of session `id` authenticated again at `auth_time` (a step-up), at
/// `stated` by the provider's own account (`None`: it did not say).
pub async fn reauthenticated_in(
    conn: &mut AnyConnection,
    id: &str,
    auth_time: i64,
    stated: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sso_sessions SET auth_time = $1, stated_auth_time = $2 \
         WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(auth_time)
    .bind(stated)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends the matching live sessions with one `session.ended` event each.
async fn end_matching_in(
    conn: &mut AnyConnection,
    which: Which<'_>,
    reason: &str,
) -> Result<u64, StoreError> {
    let column = match which {
        Which::Token(_) => "token_digest",
        Which::User(_) => "user_id",
        Which::Provider(_) => "provider_id",
        Which::Identity(_) => "identity_id",
    };
    let sql = format!(
        "UPDATE sso_sessions SET ended_at = $1 WHERE {column} = $2 AND ended_at IS NULL \
         RETURNING user_id"
    );
    let query = sqlx::query(&sql).bind(store::now());
    let query = match which {
        Which::Token(digest) => query.bind(digest),
        Which::User(id) | Which::Provider(id) | Which::Identity(id) => query.bind(id.to_owned()),
    };
    let ended = query.fetch_all(&mut *conn).await?;
    for row in &ended {
        let user_id: String = row.try_get("user_id")?;
        events::record(
            &mut *conn,
            EventType::SessionEnded,
            json!({ "user_id": user_id, "reason": reason }),
        )
        .await?;
    }
    Ok(ended.len() as u64)
}

/// How many live sessions a user has.
pub async fn live_count(store: &Store, user_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM sso_sessions WHERE user_id = $1 AND ended_at IS NULL \
         AND expires_at > $2",
    )
    .bind(user_id)
    .bind(store::now())
    .fetch_one(store.pool())
    .await?)
}

/// Sessions past their absolute timeout.
pub const JANITOR: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("sso_sessions", "id");
