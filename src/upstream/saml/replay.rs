//! Assertion IDs already used, kept until the assertion would have expired anyway.

use futures_util::future::BoxFuture;

use super::SamlError;
use crate::store::Store;

/// Remembers assertion IDs. `first_use` records `key` until `expires_at` (Unix seconds) and
/// answers whether it was new; it must be atomic (insert-if-absent), so two concurrent posts
/// of one assertion cannot both pass.
pub trait ReplayCache: Send + Sync {
    /// Whether `key` was already used (a read; `first_use` remains the check that counts).
    fn seen<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, SamlError>>;

    fn first_use<'a>(
        &'a self,
        key: &'a str,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<bool, SamlError>>;
}

/// The `saml_assertion_ids` table.
#[derive(Clone, Debug)]
pub struct DbReplayCache {
    store: Store,
}

impl DbReplayCache {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl ReplayCache for DbReplayCache {
    fn seen<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, SamlError>> {
        Box::pin(async move {
            let found: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM saml_assertion_ids WHERE id = $1")
                    .bind(key)
                    .fetch_one(self.store.pool())
                    .await?;
            Ok(found > 0)
        })
    }

    fn first_use<'a>(
        &'a self,
        key: &'a str,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<bool, SamlError>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO saml_assertion_ids (id, expires_at) VALUES ($1, $2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(key)
            .bind(expires_at)
            .execute(self.store.pool())
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

/// Assertion IDs past the end of their assertion's validity (no replay can pass then).
pub const JANITOR: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("saml_assertion_ids", "id");
