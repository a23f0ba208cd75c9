//! The `signing_keys` table: the only place its SQL lives.

use sqlx::AnyConnection;

use crate::store::{Store, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// Sealed PKCS#8; open with `store::sealed::SIGNING_KEY`.
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl SigningKeyRow {
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }
}

/// What a rotation does to the keys it replaces.
#[derive(Debug, Clone, Copy)]
pub enum Retire<'a> {
    /// Retire every active key of the algorithm (an operator's `keys rotate`).
    AllActive,
    /// Retire exactly this key, and do nothing if another instance already did (timed rotation).
    Only(&'a str),
    /// Add the key only if the algorithm has no active key (first start).
    NoneIfActiveExists,
}

/// Keys still in the JWKS at `now`, newest first.
pub async fn published(store: &Store, now: i64) -> Result<Vec<SigningKeyRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kid, alg, private_key, public_jwk, created_at, retired_at, publish_until \
         FROM signing_keys WHERE publish_until IS NULL OR publish_until > $1 \
         ORDER BY created_at DESC, kid",
    )
    .bind(now)
    .fetch_all(store.pool())
    .await?)
}

/// Up to `limit` keys still published at `now`, newest first, below `before`.
pub async fn published_page(
    store: &Store,
    now: i64,
    before: Option<&crate::store::Keyset>,
    limit: i64,
) -> Result<Vec<SigningKeyRow>, StoreError> {
    let filter = format!("publish_until IS NULL OR publish_until > {now}");
    let select = "SELECT kid, alg, private_key, public_jwk, created_at, retired_at, \
                  publish_until FROM signing_keys";
    let list = crate::store::NewestFirst {
        filter: Some(&filter),
        ..crate::store::NewestFirst::by_created(select, "kid")
    };
    let rows = list.fetch(store.pool(), before, limit).await?;
    Ok(rows
        .iter()
        .map(sqlx::FromRow::from_row)
        .collect::<Result<_, _>>()?)
}

/// Inserts `key` and retires its predecessors as `retire` says, in one transaction.
/// Returns false (and changes nothing) when the condition in `retire` did not hold.
pub async fn add(
    store: &Store,
    key: &SigningKeyRow,
    retire: Retire<'_>,
    publish_until: i64,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    if !insert_in(&mut tx, key, retire, publish_until).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Deletes keys whose publication has ended: no token they signed is still valid.
pub async fn delete_expired(store: &Store, now: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM signing_keys WHERE publish_until IS NOT NULL AND publish_until <= $1",
    )
    .bind(now)
    .execute(store.pool())
    .await?
    .rows_affected())
}

/// Inserts `key` and retires its predecessors as `retire` says, on the caller's transaction (so a
/// rotation and its audit entry commit together). Returns false, having changed nothing, when
/// the condition in `retire` did not hold.
pub async fn insert_in(
    conn: &mut AnyConnection,
    key: &SigningKeyRow,
    retire: Retire<'_>,
    publish_until: i64,
) -> Result<bool, StoreError> {
    let proceed = match retire {
        Retire::AllActive => {
            sqlx::query(
                "UPDATE signing_keys SET retired_at = $1, publish_until = $2 \
                 WHERE alg = $3 AND retired_at IS NULL",
            )
            .bind(key.created_at)
            .bind(publish_until)
            .bind(&key.alg)
            .execute(&mut *conn)
            .await?;
            true
        }
        Retire::Only(kid) => {
            sqlx::query(
                "UPDATE signing_keys SET retired_at = $1, publish_until = $2 \
                 WHERE kid = $3 AND retired_at IS NULL",
            )
            .bind(key.created_at)
            .bind(publish_until)
            .bind(kid)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        }
        Retire::NoneIfActiveExists => {
            let active: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM signing_keys WHERE alg = $1 AND retired_at IS NULL",
            )
            .bind(&key.alg)
            .fetch_one(&mut *conn)
            .await?;
            active == 0
        }
    };
    if !proceed {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, retired_at, publish_until) \
         VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
    )
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.private_key)
    .bind(&key.public_jwk)
    .bind(key.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
