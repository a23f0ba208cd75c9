//! Refresh tokens, stored by digest, in families: each rotation adds a row to its family, and
//! a chain never forks. The rotation is one conditional UPDATE in a write transaction (the first
//! of any number of racing requests wins; on PostgreSQL the others wait for its row lock, then
//! match nothing), and its one successor is kept sealed until the grace window ends, so that a
//! retry inside the window (a lost response, a burst of requests) gets that same successor, as
//! Dex's `reuseInterval` does. A rotated token presented after the window revokes its whole
//! family and records `token.reuse_detected`. This module owns `refresh_tokens` and
//! `refresh_successors`.

use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::crypto::{Sealer, TokenDigest, random_token};
use crate::store::sealed;
use crate::store::{self, Store, StoreError};
use crate::webhooks::events::{self, EventType};

/// A new refresh token: the family it joins and the grant it carries.
pub struct NewRefresh<'a> {
    pub family_id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub identity_id: &'a str,
    pub session_id: Option<&'a str>,
    pub scope: &'a str,
    pub resource: Option<&'a str>,
    pub auth_time: i64,
    pub expires_at: i64,
}

/// A stored refresh token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshToken {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub identity_id: String,
    pub session_id: Option<String>,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "family_id, client_id, user_id, identity_id, session_id, scope, resource, \
     auth_time, created_at, expires_at, rotated_at, revoked_at";

/// A fresh refresh token value.
pub fn new_token() -> String {
    random_token("rt_").expose_secret().to_owned()
}

/// Stores `token` (by digest) as a member of `new.family_id`.
pub async fn insert_in(
    conn: &mut AnyConnection,
    new: &NewRefresh<'_>,
    token: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_digest, family_id, client_id, user_id, identity_id, \
         session_id, scope, resource, auth_time, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(TokenDigest::of(token).as_bytes().to_vec())
    .bind(new.family_id)
    .bind(new.client_id)
    .bind(new.user_id)
    .bind(new.identity_id)
    .bind(new.session_id)
    .bind(new.scope)
    .bind(new.resource)
    .bind(new.auth_time)
    .bind(store::now())
    .bind(new.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The refresh token with `digest`.
pub async fn find(store: &Store, digest: &TokenDigest) -> Result<Option<RefreshToken>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM refresh_tokens WHERE token_digest = $1");
    Ok(sqlx::query_as(&sql)
        .bind(digest.as_bytes().to_vec())
        .fetch_optional(store.pool())
        .await?)
}

/// What rotating a presented refresh token came to.
#[derive(Debug)]
pub enum Rotation {
    /// The one successor: minted now, or (a retry inside the grace window) the one minted by
    /// the rotation that won.
    Successor(String),
    Revoked,
    /// Rotated before the grace window: the family is now revoked.
    Reused,
}

/// Rotates the token with `digest` in one write transaction, `successor` being what its
/// successor carries: see the module doc.
pub async fn rotate(
    store: &Store,
    sealer: &Sealer,
    digest: &TokenDigest,
    successor: &NewRefresh<'_>,
    grace_secs: i64,
) -> Result<Rotation, StoreError> {
    let now = store::now();
    let id = digest.to_hex();
    let mut tx = store.begin_write().await?;
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
        let token = new_token();
        insert_in(&mut tx, successor, &token).await?;
        sqlx::query(
            "INSERT INTO refresh_successors (id, successor, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(sealer.seal_str(&token, sealed::REFRESH_SUCCESSOR.target(&id)))
        .bind(now + grace_secs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Rotation::Successor(token));
    }

    // Someone rotated (or revoked) it first: read what they left, in this transaction.
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
    let rotated_at: Option<i64> = row.try_get("rotated_at")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let sealed: Option<Vec<u8>> = row.try_get("successor")?;
    let outcome = match (revoked_at, rotated_at, sealed) {
        (Some(_), ..) => Rotation::Revoked,
        (None, Some(rotated), Some(sealed)) if now - rotated <= grace_secs => Rotation::Successor(
            sealer
                .open_string(&sealed, sealed::REFRESH_SUCCESSOR.target(&id))?
                .expose_secret()
                .to_owned(),
        ),
        // Rotated too long ago, or (a rotation from before successors were kept) with no
        // successor to give: reuse.
        _ => {
            revoke_family_for_reuse_in(
                &mut tx,
                successor.family_id,
                successor.user_id,
                successor.client_id,
            )
            .await?;
            Rotation::Reused
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Revokes the family of a token presented again after the grace window, and records
/// `token.reuse_detected`.
pub async fn revoke_family_for_reuse(
    store: &Store,
    token: &RefreshToken,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    revoke_family_for_reuse_in(&mut tx, &token.family_id, &token.user_id, &token.client_id).await?;
    tx.commit().await?;
    Ok(())
}

async fn revoke_family_for_reuse_in(
    conn: &mut AnyConnection,
    family_id: &str,
    user_id: &str,
    client_id: &str,
) -> Result<(), StoreError> {
    if revoke_all_in(conn, Owner::Family(family_id)).await? > 0 {
        events::record(
            &mut *conn,
            EventType::TokenReuseDetected,
            json!({ "user_id": user_id, "client_id": client_id }),
        )
        .await?;
        tracing::warn!(client_id, "refresh token reuse: family revoked");
    }
    Ok(())
}

/// RFC 7009: revokes the family of the token with `digest`, if `client_id` holds it.
pub async fn revoke_family_of(
    store: &Store,
    digest: &TokenDigest,
    client_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id = \
         (SELECT family_id FROM refresh_tokens WHERE token_digest = $2 AND client_id = $3)",
    )
    .bind(store::now())
    .bind(digest.as_bytes().to_vec())
    .bind(client_id)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Which refresh tokens to revoke at once.
pub enum Owner<'a> {
    User(&'a str),
    Client(&'a str),
    Family(&'a str),
}

/// Revokes every live refresh token of a user (sign out everywhere, disabling), of a client
/// (deleting it) or of a family (a reuse); returns how many.
pub async fn revoke_all_in(conn: &mut AnyConnection, owner: Owner<'_>) -> Result<u64, StoreError> {
    let (column, value) = match owner {
        Owner::User(id) => ("user_id", id),
        Owner::Client(id) => ("client_id", id),
        Owner::Family(id) => ("family_id", id),
    };
    Ok(sqlx::query(&format!(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE {column} = $2 AND revoked_at IS NULL"
    ))
    .bind(store::now())
    .bind(value)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Revokes every live refresh token issued from these identities (their provider is being
/// deleted); returns how many.
pub async fn revoke_of_identities_in(
    conn: &mut AnyConnection,
    identity_ids: &[String],
) -> Result<u64, StoreError> {
    let mut revoked = 0;
    for chunk in identity_ids.chunks(store::MAX_IN_LIST) {
        let sql = format!(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND identity_id IN ({})",
            store::placeholders(2, chunk.len())
        );
        let query = sqlx::query(&sql).bind(store::now());
        let query = chunk.iter().fold(query, |q, id| q.bind(id));
        revoked += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(revoked)
}

/// How many usable (live, unrotated) refresh tokens a user has.
pub async fn live_count(store: &Store, user_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL \
         AND rotated_at IS NULL AND expires_at > $2",
    )
    .bind(user_id)
    .bind(store::now())
    .fetch_one(store.pool())
    .await?)
}

/// Expired refresh tokens.
pub const JANITOR: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("refresh_tokens", "token_digest");

/// A rotated token's successor is kept only for the grace window.
pub const JANITOR_SUCCESSORS: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("refresh_successors", "id");
