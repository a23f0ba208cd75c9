//! Endpoints declared in `[[webhooks.endpoints]]`: upserted at start, marked managed.
//!
//! The file is the truth for them: its URL, events and enabled flag overwrite the stored ones
//! on every start, and a managed endpoint no longer in the file is deleted with its log.
//! A declared `secret` is used as is (changing it rotates, with the usual overlap); without
//! one Portico generates a secret on first start, which an admin learns by rotating it.

use secrecy::ExposeSecret;

use super::service::{WebhookError, check_events};
use super::{WebhookSecret, WebhookSettings, endpoints, guard};
use crate::crypto::Sealer;
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("webhooks.endpoints `{id}`: {reason}")]
    Invalid { id: String, reason: String },
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

impl From<StoreError> for ManagedError {
    fn from(e: StoreError) -> Self {
        ManagedError::Webhook(e.into())
    }
}

impl From<sqlx::Error> for ManagedError {
    fn from(e: sqlx::Error) -> Self {
        ManagedError::Webhook(e.into())
    }
}

/// Applies the declared endpoints in one transaction.
pub async fn apply(
    store: &Store,
    sealer: &Sealer,
    settings: &WebhookSettings,
) -> Result<(), ManagedError> {
    let mut tx = store.begin_write().await?;
    for declared in &settings.endpoints {
        let invalid = |reason: String| ManagedError::Invalid {
            id: declared.id.clone(),
            reason,
        };
        let url = guard::check_url(&declared.url, settings.allow_private_targets)
            .map_err(|e| invalid(e.to_string()))?
            .to_string();
        let secret = declared
            .secret
            .as_ref()
            .map(|s| WebhookSecret::parse(s.expose_secret()))
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let events = check_events(&declared.events).map_err(|e| invalid(e.to_string()))?;
        let initial = secret.clone().unwrap_or_else(WebhookSecret::generate);
        let (id, description, enabled) = (&declared.id, &declared.description, declared.enabled);
        let created = endpoints::insert_in(
            &mut tx,
            sealer,
            id,
            &url,
            description,
            enabled,
            true,
            &initial,
        )
        .await?;
        if !created {
            endpoints::update_in(&mut tx, id, &url, description, enabled, true).await?;
            if let Some(secret) = &secret {
                let current = endpoints::secret_in(&mut tx, sealer, id).await?;
                if current.expose_secret() != secret.expose() {
                    let overlap_until = store::now_ms() + settings.secret_overlap.as_millis();
                    endpoints::rotate_secret_in(&mut tx, sealer, id, secret, overlap_until).await?;
                }
            }
        }
        endpoints::replace_subscriptions_in(&mut tx, id, &events).await?;
    }
    for id in endpoints::managed_ids_in(&mut tx).await? {
        if !settings.endpoints.iter().any(|e| e.id == id) {
            tracing::info!(endpoint = %id, "deleting a webhook endpoint no longer in portico.toml");
            endpoints::delete_in(&mut tx, &id).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
