//! The token vault: an identity's upstream access, refresh and ID tokens, with their expiry
//! and scope, each sealed to the identity row (`SealTarget` binds table, column and row id,
//! so a sealed value copied to another row does not open).
//!
//! Refreshing is serialised per identity across instances by a lease in the row: a
//! conditional UPDATE claims `refresh_lease_until`; whoever wins makes the one upstream
//! refresh, the others wait and re-read.

pub mod broker;
pub mod refresh;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::crypto::{SealTarget, Sealer};
use crate::store::{self, Store, StoreError};
use crate::upstream::{ProviderId, UpstreamIdentity, UpstreamTokens};

const TABLE: &str = "identities";

/// How long a claimed refresh lease lasts: longer than an upstream refresh with its retries.
pub const LEASE_SECS: i64 = 30;

/// The sealed `token_meta` column.
#[derive(Serialize, Deserialize)]
struct TokenMeta {
    expires_at: Option<i64>,
    scope: Option<String>,
}

fn target<'a>(column: &'static str, identity_id: &'a str) -> SealTarget<'a> {
    SealTarget::new(TABLE, column, identity_id)
}

/// Stores the upstream tokens of a login or refresh, sealed, in the caller's transaction. A
/// new refresh token replaces the old one in the same statement (a provider that did not
/// rotate it leaves it as it was, as does one that sent no new ID token); a stored login
/// that needed renewing is renewed.
pub async fn store_tokens(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    identity_id: &str,
    tokens: &UpstreamTokens,
) -> Result<(), StoreError> {
    let seal = |column: &'static str, value: &SecretString| {
        sealer.seal_str(value.expose_secret(), target(column, identity_id))
    };
    let meta = TokenMeta {
        expires_at: tokens.expires_at,
        scope: tokens.scope.clone(),
    };
    let meta = sealer.seal(
        &serde_json::to_vec(&meta).expect("meta serialises"),
        target("token_meta", identity_id),
    );
    sqlx::query(
        "UPDATE identities SET access_token = $1, \
         refresh_token = COALESCE($2, refresh_token), id_token = COALESCE($3, id_token), \
         token_meta = $4, needs_login = 0 WHERE id = $5",
    )
    .bind(seal("access_token", &tokens.access_token))
    .bind(
        tokens
            .refresh_token
            .as_ref()
            .map(|t| seal("refresh_token", t)),
    )
    .bind(tokens.id_token.as_ref().map(|t| seal("id_token", t)))
    .bind(meta)
    .bind(identity_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An identity with its vault opened.
pub struct Vaulted {
    pub identity_id: String,
    pub user_id: String,
    pub needs_login: bool,
    /// What the refresh capability takes: the stored claims and tokens.
    pub identity: UpstreamIdentity,
}

impl Vaulted {
    pub fn tokens(&self) -> Option<&UpstreamTokens> {
        self.identity.tokens.as_ref()
    }

    /// Whether the access token is missing or expires within `margin` seconds.
    pub fn expires_within(&self, margin: i64, now: i64) -> bool {
        match self.tokens() {
            Some(t) if !t.access_token.expose_secret().is_empty() => {
                t.expires_at.is_some_and(|at| at - now <= margin)
            }
            _ => true,
        }
    }
}

const VAULTED_COLUMNS: &str = "id, user_id, provider_id, subject, email, email_verified, name, \
     picture, groups, access_token, refresh_token, id_token, token_meta, \
     needs_login";

impl Store {
    /// The user's identity at `provider`, tokens opened.
    pub async fn vaulted(
        &self,
        sealer: &Sealer,
        user_id: &str,
        provider: &ProviderId,
    ) -> Result<Option<Vaulted>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VAULTED_COLUMNS} FROM identities WHERE user_id = $1 AND provider_id = $2"
        ))
        .bind(user_id)
        .bind(provider.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| open_row(sealer, &r)).transpose()
    }

    /// The identity `identity_id`, tokens opened.
    pub async fn vaulted_by_id(
        &self,
        sealer: &Sealer,
        identity_id: &str,
    ) -> Result<Option<Vaulted>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VAULTED_COLUMNS} FROM identities WHERE id = $1"
        ))
        .bind(identity_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| open_row(sealer, &r)).transpose()
    }

    /// Claims the identity's refresh lease; `false` when another holder's lease is live.
    pub async fn claim_refresh_lease(&self, identity_id: &str) -> Result<bool, StoreError> {
        let now = store::now();
        let claimed = sqlx::query(
            "UPDATE identities SET refresh_lease_until = $1 WHERE id = $2 \
             AND (refresh_lease_until IS NULL OR refresh_lease_until < $3)",
        )
        .bind(now + LEASE_SECS)
        .bind(identity_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Gives the lease back without a new token (the refresh failed).
    pub async fn release_refresh_lease(
        &self,
        identity_id: &str,
        needs_login: bool,
    ) -> Result<(), StoreError> {
        let sql = if needs_login {
            "UPDATE identities SET refresh_lease_until = NULL, needs_login = 1 WHERE id = $1"
        } else {
            "UPDATE identities SET refresh_lease_until = NULL WHERE id = $1"
        };
        sqlx::query(sql)
            .bind(identity_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// An `identities` row read with [`VAULTED_COLUMNS`], its sealed columns opened.
fn open_row(sealer: &Sealer, row: &AnyRow) -> Result<Vaulted, StoreError> {
    let id: String = row.try_get("id")?;
    let open = |column: &'static str| -> Result<Option<SecretString>, StoreError> {
        let sealed: Option<Vec<u8>> = row.try_get(column)?;
        Ok(sealed
            .map(|s| sealer.open_string(&s, target(column, &id)))
            .transpose()?)
    };
    let access = open("access_token")?;
    let refresh = open("refresh_token")?;
    let id_token = open("id_token")?;
    let meta: Option<TokenMeta> = open("token_meta")?
        .map(|m| serde_json::from_str(m.expose_secret()))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("identity {id}: token meta: {e}")))?;
    let tokens = (access.is_some() || refresh.is_some()).then(|| UpstreamTokens {
        access_token: access.unwrap_or_else(|| SecretString::from(String::new())),
        refresh_token: refresh,
        id_token,
        expires_at: meta.as_ref().and_then(|m| m.expires_at),
        scope: meta.and_then(|m| m.scope),
    });
    let provider: String = row.try_get("provider_id")?;
    let identity = UpstreamIdentity {
        provider: ProviderId::parse(&provider).map_err(StoreError::Corrupt)?,
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        name: row.try_get("name")?,
        picture: row.try_get("picture")?,
        groups: serde_json::from_str(&row.try_get::<String, _>("groups")?).unwrap_or_default(),
        auth_time: None,
        tokens,
    };
    Ok(Vaulted {
        user_id: row.try_get("user_id")?,
        needs_login: row.try_get::<i64, _>("needs_login")? != 0,
        identity_id: id,
        identity,
    })
}

/// Ends a lease in the caller's transaction, with the refreshed tokens stored.
pub async fn end_lease(conn: &mut AnyConnection, identity_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE identities SET refresh_lease_until = NULL WHERE id = $1")
        .bind(identity_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
