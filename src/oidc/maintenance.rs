//! Pruning rows that can no longer matter: expired pending logins, codes, sessions, refresh
//! tokens and revocation-list entries. Every instance may run it; the deletes are idempotent.

use std::time::Duration;

use crate::store::{self, Store, StoreError};

/// Used codes are kept a day after expiry so that a late replay still revokes their tokens.
const CODE_KEEP_SECS: i64 = 86_400;

impl Store {
    pub async fn prune_expired(&self) -> Result<u64, StoreError> {
        let now = store::now();
        let mut removed = 0;
        for (sql, cutoff) in [
            (
                "DELETE FROM pending_authorizations WHERE expires_at < $1",
                now,
            ),
            (
                "DELETE FROM auth_codes WHERE expires_at < $1",
                now - CODE_KEEP_SECS,
            ),
            ("DELETE FROM sso_sessions WHERE expires_at < $1", now),
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            (
                "DELETE FROM revoked_access_tokens WHERE expires_at < $1",
                now,
            ),
        ] {
            removed += sqlx::query(sql)
                .bind(cutoff)
                .execute(self.pool())
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    /// Runs `prune_expired` every ten minutes until the task is aborted.
    pub fn spawn_pruning(&self) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(600));
            // The first tick is immediate; start pruning one period after start.
            interval.tick().await;
            loop {
                interval.tick().await;
                match store.prune_expired().await {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "pruned expired OIDC rows"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning expired OIDC rows failed"),
                }
            }
        })
    }
}
