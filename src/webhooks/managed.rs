//! Endpoints declared in `[[webhooks.endpoints]]`: upserted at start, marked managed.
//!
//! The file is the truth for them: its URL, events and enabled flag overwrite the stored ones
//! on every start, and a managed endpoint no longer in the file is deleted with its log.
//! A declared `secret` is used as is (changing it rotates, with the usual overlap); without
//! one Portico generates a secret on first start, which an admin learns by rotating it.

use secrecy::ExposeSecret;

use super::service::{
    WebhookError, delete_endpoint, insert_endpoint, replace_subscriptions, rotate_in,
};
use super::{WebhookSecret, WebhookSettings, db, guard};
use crate::crypto::{SealTarget, Sealer};
use crate::store::{Store, StoreError};

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
        let mut events: Vec<String> = Vec::new();
        for e in &declared.events {
            let t = super::service::subscribable(e)
                .ok_or_else(|| invalid(format!("`{e}` cannot be subscribed to")))?;
            events.push(t.as_str().to_owned());
        }
        if events.is_empty() {
            return Err(invalid("needs at least one event type".into()));
        }
        let initial = secret.clone().unwrap_or_else(WebhookSecret::generate);
        let created = insert_endpoint(
            &mut tx,
            sealer,
            &declared.id,
            &url,
            &declared.description,
            declared.enabled,
            true,
            &initial,
        )
        .await?;
        if !created {
            sqlx::query(
                "UPDATE webhook_endpoints SET url = $1, description = $2, enabled = $3, managed = 1, \
                 disabled_reason = CASE WHEN $3 = 1 THEN NULL ELSE disabled_reason END, \
                 updated_at = $4 WHERE id = $5",
            )
            .bind(&url)
            .bind(&declared.description)
            .bind(i64::from(declared.enabled))
            .bind(crate::store::now())
            .bind(&declared.id)
            .execute(&mut *tx)
            .await?;
            if let Some(secret) = &secret {
                let stored: Vec<u8> =
                    sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
                        .bind(&declared.id)
                        .fetch_one(&mut *tx)
                        .await?;
                let current = sealer
                    .open_string(
                        &stored,
                        SealTarget::new("webhook_endpoints", "secret", &declared.id),
                    )
                    .map_err(StoreError::from)
                    .map_err(WebhookError::from)?;
                if current.expose_secret() != secret.expose() {
                    rotate_in(
                        &mut tx,
                        sealer,
                        &declared.id,
                        secret,
                        db::now_ms() + settings.secret_overlap.as_millis(),
                    )
                    .await?;
                }
            }
        }
        replace_subscriptions(&mut tx, &declared.id, &events).await?;
    }
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE managed = 1")
            .fetch_all(&mut *tx)
            .await?;
    for id in stored {
        if !settings.endpoints.iter().any(|e| e.id == id) {
            tracing::info!(endpoint = %id, "deleting a webhook endpoint no longer in portico.toml");
            delete_endpoint(&mut tx, &id).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
