//! AuthnRequest IDs we sent and have not yet seen answered: each may be answered once.

use futures_util::future::BoxFuture;

use super::SamlError;
use crate::store::Store;

/// How long an AuthnRequest may stay unanswered: a user at the IdP's login page.
pub const REQUEST_LIFETIME_SECS: i64 = 15 * 60;

/// Outstanding AuthnRequests. `consume` must be atomic and answer true at most once per ID,
/// and only for an unexpired request of this provider.
pub trait OutstandingRequests: Send + Sync {
    /// Whether a Response to `request_id` could be accepted here at all, asked before anything
    /// is used up: `false` when it cannot (the answer to another login's request), so that it
    /// is refused without spending its assertion ID. `consume` remains the check that counts.
    fn may_answer(&self, _request_id: &str) -> bool {
        true
    }

    fn consume<'a>(&'a self, request_id: &'a str) -> BoxFuture<'a, Result<bool, SamlError>>;
}

/// The `saml_requests` table, scoped to one provider.
#[derive(Clone, Debug)]
pub struct DbOutstandingRequests {
    store: Store,
    provider: String,
}

impl DbOutstandingRequests {
    pub fn new(store: Store, provider: &str) -> Self {
        Self {
            store,
            provider: provider.to_owned(),
        }
    }

    /// Records a request just sent, valid for [`REQUEST_LIFETIME_SECS`] from `now`.
    pub async fn remember(&self, request_id: &str, now: i64) -> Result<(), SamlError> {
        sqlx::query("INSERT INTO saml_requests (id, provider, expires_at) VALUES ($1, $2, $3)")
            .bind(request_id)
            .bind(&self.provider)
            .bind(now + REQUEST_LIFETIME_SECS)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

impl OutstandingRequests for DbOutstandingRequests {
    fn consume<'a>(&'a self, request_id: &'a str) -> BoxFuture<'a, Result<bool, SamlError>> {
        Box::pin(async move {
            // One statement: the DELETE both checks and uses the request.
            let done = sqlx::query(
                "DELETE FROM saml_requests WHERE id = $1 AND provider = $2 AND expires_at >= $3",
            )
            .bind(request_id)
            .bind(&self.provider)
            .bind(crate::store::now())
            .execute(self.store.pool())
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

/// AuthnRequests no Response answered in time.
pub const JANITOR: crate::store::janitor::Rule =
    crate::store::janitor::Rule::expired("saml_requests", "id");
