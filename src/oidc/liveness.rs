//! Whether an access token that verified offline is still live here: the one rule that
//! `/userinfo`, `/introspect` and the broker share. A token is dead when its `jti` is on the
//! revocation list (RFC 7009 revocation, a reused code), and a user's token also when the user
//! is gone or disabled, or when its sessions were ended ("sign out everywhere") after it was
//! minted (`users.tokens_revoked_at_ms`, compared with the millisecond in the token's UUIDv7
//! `jti`; a token without one, from an older release, is compared by its `iat` second, and a
//! token of that same second counts as ended).
//!
//! Services that validate Portico's JWTs offline see none of this until the token expires:
//! keep access tokens short-lived, or introspect.

use sqlx::Row;

use super::tokens::{AccessClaims, jti_minted_ms};
use crate::store::{Store, StoreError};
use crate::users::{User, user_from_row};

/// What a verified access token stands for now.
#[derive(Debug)]
pub enum Liveness {
    /// Live: with its user, for a token issued to one (not for `client_credentials`).
    Live(Option<User>),
    /// Dead, and why (safe to show the token's holder).
    Dead(&'static str),
}

/// A user grant's token carries `auth_time`; a `client_credentials` token has no user.
fn has_user(claims: &AccessClaims) -> bool {
    claims.auth_time.is_some()
}

/// One query: the revocation list and, for a user's token, the user.
pub async fn check(store: &Store, claims: &AccessClaims) -> Result<Liveness, StoreError> {
    let user_id = if has_user(claims) {
        claims.sub.as_str()
    } else {
        ""
    };
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $1) AS revoked, \
         u.id, u.email, u.email_verified, u.name, u.picture, u.groups, u.disabled, \
         u.tokens_revoked_at_ms FROM (SELECT 1 AS one) AS t LEFT JOIN users u ON u.id = $2",
    )
    .bind(&claims.jti)
    .bind(user_id)
    .fetch_one(store.pool())
    .await?;
    if row.try_get::<i64, _>("revoked")? != 0 {
        return Ok(Liveness::Dead("the token is revoked"));
    }
    if !has_user(claims) {
        return Ok(Liveness::Live(None));
    }
    if row.try_get::<Option<String>, _>("id")?.is_none() {
        return Ok(Liveness::Dead("the token has no user"));
    }
    let user = user_from_row(&row)?;
    if user.disabled {
        return Ok(Liveness::Dead("the user is disabled"));
    }
    let revoked_at_ms: Option<i64> = row.try_get("tokens_revoked_at_ms")?;
    let minted_ms = jti_minted_ms(&claims.jti).unwrap_or(claims.iat * 1000 + 999);
    if revoked_at_ms.is_some_and(|at| minted_ms <= at) {
        return Ok(Liveness::Dead("the user's sessions were ended"));
    }
    Ok(Liveness::Live(Some(user)))
}
