//! The signing keys as admins see them: public facts only, and rotation.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::{Caller, http::time};
use crate::keys::KeyRing;
use crate::keys::repo::SigningKeyRow;
use crate::state::AppState;
use crate::store::{self, Store};

/// A signing key without its private material.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyInfo {
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// RFC 3339.
    pub created_at: String,
    /// When a newer key replaced it; absent while it signs.
    pub retired_at: Option<String>,
    /// Until when the JWKS still publishes it; absent while it signs.
    pub publish_until: Option<String>,
    pub active: bool,
    #[serde(skip)]
    pub created_at_secs: i64,
    #[serde(skip)]
    pub publish_until_secs: Option<i64>,
}

impl KeyInfo {
    pub fn display_created(&self) -> String {
        time::display(self.created_at_secs)
    }

    pub fn display_publish_until(&self) -> String {
        self.publish_until_secs
            .map(time::display)
            .unwrap_or_else(|| "—".to_owned())
    }
}

/// What a rotation made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// The new active keys, one per algorithm.
    pub created: Vec<RotatedKey>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub alg: String,
    pub kid: String,
}

impl From<SigningKeyRow> for KeyInfo {
    fn from(row: SigningKeyRow) -> Self {
        KeyInfo {
            active: row.is_active(),
            kid: row.kid,
            alg: row.alg,
            created_at: time::rfc3339(row.created_at),
            retired_at: row.retired_at.map(time::rfc3339),
            publish_until: row.publish_until.map(time::rfc3339),
            created_at_secs: row.created_at,
            publish_until_secs: row.publish_until,
        }
    }
}

/// Every key still published, newest first.
pub async fn all(state: &AppState) -> Result<Vec<KeyInfo>, store::StoreError> {
    let rows = crate::keys::repo::published(&state.store, store::now()).await?;
    Ok(rows.into_iter().map(KeyInfo::from).collect())
}

pub async fn list(state: &AppState, page: &PageRequest) -> anyhow::Result<Page<KeyInfo>> {
    let rows = crate::keys::repo::published_page(
        &state.store,
        store::now(),
        page.cursor.as_ref(),
        page.limit + 1,
    )
    .await?;
    let keys = rows.into_iter().map(KeyInfo::from).collect();
    Ok(page.of(keys, |k| (k.created_at_secs, k.kid.clone())))
}

/// Adds a new active key per algorithm; the old ones stay published until their tokens expire.
///
/// The keys and the audit entry commit in one transaction: a rotation is recorded exactly when
/// it happened. (Used by the API, the keys page and `portico keys rotate`.)
pub async fn rotate(keys: &KeyRing, store: &Store, caller: &Caller) -> anyhow::Result<Rotated> {
    // Key generation is slow: it happens before the write transaction opens.
    let prepared = keys.prepare_rotation().await?;
    let mut tx = store.begin_write().await?;
    let created: Vec<RotatedKey> = prepared
        .store_in(&mut tx)
        .await?
        .into_iter()
        .map(|(alg, kid)| RotatedKey {
            alg: alg.to_string(),
            kid,
        })
        .collect();
    let details = json!({ "created": created });
    crate::audit::commit_with(tx, caller, "keys.rotated", "keys", details).await?;
    // Committed: this instance signs with the new keys at once; the others on their next
    // refresh. A failed reload leaves the old snapshot until then, which is still valid.
    if let Err(e) = keys.reload().await {
        tracing::warn!(error = %e, "reloading the key ring after a rotation failed");
    }
    Ok(Rotated { created })
}
