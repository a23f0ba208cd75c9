//! The `identities` table: a user's identity at one provider, its last claims, and its
//! upstream tokens sealed to the row ([`SealedTokens`]: the token vault keeps them fresh).
//! The only place this table's SQL lives.
//!
//! Refreshing is serialised per identity across instances by a lease in the row: a
//! conditional UPDATE claims `refresh_lease_until`; whoever wins makes the one upstream refresh.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::crypto::Sealer;
use crate::store::sealed::{self, SealedColumn};
use crate::store::{self, Store, StoreError, flag, json_list, json_object};
use crate::upstream::{UpstreamIdentity, UpstreamTokens};

/// An identity row, without its tokens.
#[derive(Debug, Clone)]
pub struct IdentityRow {
    pub id: String,
    pub user_id: String,
    pub provider_id: String,
    pub subject: String,
    pub email: Option<String>,
    /// What the provider said (the user's own flag follows `users::vouched`).
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub groups: Vec<String>,
    /// Claims the provider's pipeline added (`static_claims`, `extra_claims`).
    pub extra_claims: serde_json::Map<String, serde_json::Value>,
    /// The upstream grant has ended: the user must sign in at the provider again.
    pub needs_login: bool,
    pub created_at: i64,
    /// When the claims were last written (a login or a refresh).
    pub updated_at: i64,
}

/// The sealed token columns of an identity, as stored.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SealedTokens {
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub id_token: Option<Vec<u8>>,
    pub token_meta: Option<Vec<u8>>,
}

const COLUMNS: &str = "id, user_id, provider_id, subject, email, email_verified, name, picture, \
     groups, extra_claims, needs_login, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<IdentityRow, StoreError> {
    Ok(IdentityRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        provider_id: r.try_get("provider_id")?,
        subject: r.try_get("subject")?,
        email: r.try_get("email")?,
        email_verified: flag(r, "email_verified")?,
        name: r.try_get("name")?,
        picture: r.try_get("picture")?,
        groups: json_list(r, "groups")?,
        extra_claims: json_object(r, "extra_claims")?,
        needs_login: flag(r, "needs_login")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The sealed `token_meta` column.
#[derive(Serialize, Deserialize)]
struct TokenMeta {
    expires_at: Option<i64>,
    scope: Option<String>,
}

impl SealedTokens {
    /// `tokens` sealed for identity `id`.
    pub fn seal(sealer: &Sealer, id: &str, tokens: &UpstreamTokens) -> Self {
        let seal = |column: SealedColumn, value: &SecretString| {
            sealer.seal_str(value.expose_secret(), column.target(id))
        };
        let meta = TokenMeta {
            expires_at: tokens.expires_at,
            scope: tokens.scope.clone(),
        };
        Self {
            access_token: Some(seal(sealed::IDENTITY_ACCESS_TOKEN, &tokens.access_token)),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| seal(sealed::IDENTITY_REFRESH_TOKEN, t)),
            id_token: tokens
                .id_token
                .as_ref()
                .map(|t| seal(sealed::IDENTITY_ID_TOKEN, t)),
            token_meta: Some(sealer.seal(
                &serde_json::to_vec(&meta).expect("meta serialises"),
                sealed::IDENTITY_TOKEN_META.target(id),
            )),
        }
    }

    /// The tokens of identity `id`, opened; `None` when it holds neither an access nor a
    /// refresh token.
    pub fn open(&self, sealer: &Sealer, id: &str) -> Result<Option<UpstreamTokens>, StoreError> {
        let open = |column: SealedColumn, value: &Option<Vec<u8>>| {
            value
                .as_ref()
                .map(|s| sealer.open_string(s, column.target(id)))
                .transpose()
        };
        let access = open(sealed::IDENTITY_ACCESS_TOKEN, &self.access_token)?;
        let refresh = open(sealed::IDENTITY_REFRESH_TOKEN, &self.refresh_token)?;
        let id_token = open(sealed::IDENTITY_ID_TOKEN, &self.id_token)?;
        let meta: Option<TokenMeta> = open(sealed::IDENTITY_TOKEN_META, &self.token_meta)?
            .map(|m| serde_json::from_str(m.expose_secret()))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("identity {id}: token meta: {e}")))?;
        if access.is_none() && refresh.is_none() {
            return Ok(None);
        }
        Ok(Some(UpstreamTokens {
            access_token: access.unwrap_or_else(|| SecretString::from(String::new())),
            refresh_token: refresh,
            id_token,
            expires_at: meta.as_ref().and_then(|m| m.expires_at),
            scope: meta.and_then(|m| m.scope),
        }))
    }
}

/// The identity `(provider_id, subject)`: its id and its user's.
pub async fn find_by_subject_in(
    conn: &mut AnyConnection,
    provider_id: &str,
    subject: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let row =
        sqlx::query("SELECT id, user_id FROM identities WHERE provider_id = $1 AND subject = $2")
            .bind(provider_id)
            .bind(subject)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| -> Result<(String, String), StoreError> {
        Ok((r.try_get("id")?, r.try_get("user_id")?))
    })
    .transpose()
}

/// Creates identity `id` of `user_id` at `(provider_id, subject)`; its claims follow.
pub async fn insert_in(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
    provider_id: &str,
    subject: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO identities (id, user_id, provider_id, subject, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id)
    .bind(user_id)
    .bind(provider_id)
    .bind(subject)
    .bind(store::now())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Replaces an identity's claims with what a login or refresh said.
pub async fn set_claims_in(
    conn: &mut AnyConnection,
    id: &str,
    claims: &UpstreamIdentity,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE identities SET email = $1, email_verified = $2, name = $3, picture = $4, \
         groups = $5, extra_claims = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(claims.email.as_deref())
    .bind(i64::from(claims.email_verified))
    .bind(claims.name.as_deref())
    .bind(claims.picture.as_deref())
    .bind(store::to_json_list(&claims.groups))
    .bind(store::to_json_object(&claims.extra_claims))
    .bind(store::now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Stores a login's or refresh's sealed tokens. A refresh or ID token left out keeps the stored
/// one (a provider that did not rotate it, or sent none); the identity no longer needs a login.
pub async fn store_tokens_in(
    conn: &mut AnyConnection,
    id: &str,
    tokens: &SealedTokens,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE identities SET access_token = $1, \
         refresh_token = COALESCE($2, refresh_token), id_token = COALESCE($3, id_token), \
         token_meta = $4, needs_login = 0 WHERE id = $5",
    )
    .bind(&tokens.access_token)
    .bind(&tokens.refresh_token)
    .bind(&tokens.id_token)
    .bind(&tokens.token_meta)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Which identity to read with its tokens.
pub enum Which<'a> {
    Id(&'a str),
    /// A user's identity at a provider.
    UserAt(&'a str, &'a str),
}

/// An identity with its sealed tokens.
pub async fn with_tokens(
    store: &Store,
    which: Which<'_>,
) -> Result<Option<(IdentityRow, SealedTokens)>, StoreError> {
    let (filter, first, second) = match which {
        Which::Id(id) => ("id = $1", id, None),
        Which::UserAt(user, provider) => {
            ("user_id = $1 AND provider_id = $2", user, Some(provider))
        }
    };
    let sql = format!(
        "SELECT {COLUMNS}, access_token, refresh_token, id_token, token_meta FROM identities \
         WHERE {filter}"
    );
    let mut query = sqlx::query(&sql).bind(first);
    if let Some(second) = second {
        query = query.bind(second);
    }
    let row = query.fetch_optional(store.pool()).await?;
    row.map(|r| Ok((from_row(&r)?, sqlx::FromRow::from_row(&r)?)))
        .transpose()
}

/// What a downstream refresh needs to know of an identity.
pub struct GrantState {
    pub provider_id: String,
    pub needs_login: bool,
    /// Whether any upstream token is stored (a refresh can ask the provider).
    pub has_tokens: bool,
    /// When its claims were last written.
    pub claims_at: i64,
}

/// The grant state of identity `id`.
pub async fn grant_state(store: &Store, id: &str) -> Result<Option<GrantState>, StoreError> {
    let row = sqlx::query(
        "SELECT provider_id, needs_login, updated_at, \
         CASE WHEN access_token IS NULL AND refresh_token IS NULL THEN 0 ELSE 1 END AS has_tokens \
         FROM identities WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| -> Result<GrantState, StoreError> {
        Ok(GrantState {
            provider_id: r.try_get("provider_id")?,
            needs_login: flag(&r, "needs_login")?,
            has_tokens: flag(&r, "has_tokens")?,
            claims_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// The provider identity `id` is at, read on `conn` (a code's redemption reads it in the
/// claim's transaction); `None` when the identity no longer exists.
pub async fn provider_of_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT provider_id FROM identities WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Claims the identity's refresh lease until `until`; `false` when another holder's lease is
/// live.
pub async fn claim_lease(store: &Store, id: &str, until: i64) -> Result<bool, StoreError> {
    let claimed = sqlx::query(
        "UPDATE identities SET refresh_lease_until = $1 WHERE id = $2 \
         AND (refresh_lease_until IS NULL OR refresh_lease_until < $3)",
    )
    .bind(until)
    .bind(id)
    .bind(store::now())
    .execute(&mut *store.write_conn().await?)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Gives the lease back without a new token (the refresh failed); with `needs_login`, the
/// upstream grant has ended.
pub async fn release_lease(store: &Store, id: &str, needs_login: bool) -> Result<(), StoreError> {
    end_lease_in(&mut *store.write_conn().await?, id, needs_login).await
}

/// Ends a lease on `conn` (in the caller's transaction, with the refreshed tokens stored).
pub async fn end_lease_in(
    conn: &mut AnyConnection,
    id: &str,
    needs_login: bool,
) -> Result<(), StoreError> {
    let and = if needs_login { ", needs_login = 1" } else { "" };
    let sql = format!("UPDATE identities SET refresh_lease_until = NULL{and} WHERE id = $1");
    sqlx::query(&sql).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// A user's identities, oldest first; never a token column.
pub async fn of_user(store: &Store, user_id: &str) -> Result<Vec<IdentityRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM identities WHERE user_id = $1 ORDER BY created_at, id"
    ))
    .bind(user_id)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The ids of the identities at `provider_id`.
pub async fn ids_of_provider_in(
    conn: &mut AnyConnection,
    provider_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM identities WHERE provider_id = $1")
            .bind(provider_id)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Deletes the identities at `provider_id`, with the tokens sealed in them; returns how many.
pub async fn delete_of_provider_in(
    conn: &mut AnyConnection,
    provider_id: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM identities WHERE provider_id = $1")
        .bind(provider_id)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// Identity `id`, read in the caller's transaction; never a token column.
pub async fn find_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<IdentityRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM identities WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Whether `user_id` has an identity at `provider_id`, in the caller's transaction.
pub async fn user_has_at_in(
    conn: &mut AnyConnection,
    user_id: &str,
    provider_id: &str,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM identities WHERE user_id = $1 AND provider_id = $2",
    )
    .bind(user_id)
    .bind(provider_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// How many identities `user_id` has, in the caller's transaction.
pub async fn count_of_user_in(conn: &mut AnyConnection, user_id: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM identities WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Deletes identity `id` of `user_id`, with the upstream tokens sealed in it; false if the
/// user has no such identity.
pub async fn delete_in(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("DELETE FROM identities WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Gives identity `id`, `from_user`'s, to `to_user`, without the upstream tokens sealed in it
/// (they came with `from_user`'s sign-ins): the broker serves none until `to_user` signs in
/// through it.
/// False if `from_user` has no such identity.
pub async fn reassign_in(
    conn: &mut AnyConnection,
    id: &str,
    from_user: &str,
    to_user: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE identities SET user_id = $1, access_token = NULL, refresh_token = NULL, \
         id_token = NULL, token_meta = NULL, updated_at = $2 \
         WHERE id = $3 AND user_id = $4",
    )
    .bind(to_user)
    .bind(store::now())
    .bind(id)
    .bind(from_user)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}
