//! Whether an access token that verified offline is still live here: the one rule that
//! `/userinfo`, `/introspect` and the broker share. A token is dead when its `jti` is on the
//! revocation list (RFC 7009 revocation, a reused code), and a user's token also when the user
//! is gone or disabled, or when its sessions were ended ("sign out everywhere") after it was
//! minted (`users.tokens_revoked_at_ms`, compared with the millisecond in the token's UUIDv7
//! `jti`; a token without one, from an older release, is compared by its `iat` second, and a
//! token of that same second counts as ended). A token of a client that no longer exists
//! (deleted by an admin, or removed from portico.toml) is dead too.
//!
//! Services that validate Portico's JWTs offline see none of this until the token expires:
//! keep access tokens short-lived, or introspect.

use super::tokens::{AccessClaims, jti_minted_ms};
use crate::clients::Client;
use crate::grants::revocations;
use crate::store::{Store, StoreError};
use crate::users::{self, User};

/// What a verified access token stands for now.
#[derive(Debug)]
pub enum Liveness {
    /// Live: with its user, for a token issued to one (not for `client_credentials`), and its
    /// client as it is now (whose claim rules decide what the user's claims show).
    Live {
        user: Option<Box<User>>,
        client: Box<Client>,
    },
    /// Dead, and why (safe to show the token's holder).
    Dead(&'static str),
}

/// A user grant's token carries `auth_time`; a `client_credentials` token has no user.
fn has_user(claims: &AccessClaims) -> bool {
    claims.auth_time.is_some()
}

/// The revocation list and, for a user's token, the user.
pub async fn check(store: &Store, claims: &AccessClaims) -> Result<Liveness, StoreError> {
    if revocations::is_revoked(store, &claims.jti).await? {
        return Ok(Liveness::Dead("the token is revoked"));
    }
    let Some(client) = crate::clients::repo::find(store, &claims.client_id).await? else {
        return Ok(Liveness::Dead("the token's client no longer exists"));
    };
    let client = Box::new(client);
    if !has_user(claims) {
        return Ok(Liveness::Live { user: None, client });
    }
    let Some(user) = users::repo::find(store, &claims.sub).await? else {
        return Ok(Liveness::Dead("the token has no user"));
    };
    if user.disabled {
        return Ok(Liveness::Dead("the user is disabled"));
    }
    let minted_ms = jti_minted_ms(&claims.jti).unwrap_or(claims.iat * 1000 + 999);
    if user.tokens_revoked_at_ms.is_some_and(|at| minted_ms <= at) {
        return Ok(Liveness::Dead("the user's sessions were ended"));
    }
    Ok(Liveness::Live {
        user: Some(Box::new(user)),
        client,
    })
}
