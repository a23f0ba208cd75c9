//! Access tokens revoked before they expire (RFC 7009 revocation, a code redeemed twice): their
//! `jti`, kept until the token would have expired anyway. This module owns
//! `revoked_access_tokens`; `oidc::liveness` reads it for every token it checks.

use sqlx::AnyConnection;

use crate::store::{Store, StoreError};

/// Puts `jti` on the list until `expires_at`; revoking twice is no error.
pub async fn revoke_in(
    conn: &mut AnyConnection,
    jti: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// As [`revoke_in`], on a pooled connection.
pub async fn revoke(store: &Store, jti: &str, expires_at: i64) -> Result<(), StoreError> {
    let mut conn = store.pool().acquire().await?;
    revoke_in(&mut conn, jti, expires_at).await
}

/// Whether `jti` is revoked.
pub async fn is_revoked(store: &Store, jti: &str) -> Result<bool, StoreError> {
    let found: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_one(store.pool())
            .await?;
    Ok(found != 0)
}

/// Revocations of tokens that have expired anyway.
pub const JANITOR: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("revoked_access_tokens", "jti");
