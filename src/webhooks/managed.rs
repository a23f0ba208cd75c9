//! Endpoints declared in `[[webhooks.endpoints]]`: checked, compared with the stored ones and
//! upserted at start, marked managed (`declared` composes the plan and runs it).
//!
//! The file is the truth for them: its URL, events and enabled flag overwrite the stored ones
//! on every start, and a managed endpoint no longer in the file is deleted with its pending
//! deliveries and its log (`delete_managed_in`). A declared `secret` is used as is (changing it
//! rotates, with the usual overlap); without one Portico generates a secret on first start,
//! which an admin learns by rotating it. An endpoint an admin made is never touched.

use secrecy::ExposeSecret;

use super::service::{WebhookError, check_events};
use super::{Endpoint, ManagedEndpoint, WebhookSecret, WebhookSettings, endpoints, guard};
use crate::crypto::Sealer;
use crate::store::{self, StoreError};

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

/// A declared endpoint after its checks: the URL as stored, its secret and its events.
#[derive(Debug)]
pub struct Checked<'a> {
    pub declared: &'a ManagedEndpoint,
    url: String,
    secret: Option<WebhookSecret>,
    events: Vec<String>,
}

/// Checks a declared endpoint as the admin API checks one (URL guard, secret, events).
pub fn check<'a>(
    declared: &'a ManagedEndpoint,
    settings: &WebhookSettings,
) -> Result<Checked<'a>, ManagedError> {
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
    Ok(Checked {
        declared,
        url,
        secret,
        events,
    })
}

/// The stored endpoint with the declared one's id, if any.
pub async fn find_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<Endpoint>, ManagedError> {
    Ok(endpoints::find_in(conn, id).await?)
}

/// Whether upserting `checked` would change `stored`: URL, description, enabled flag, events,
/// or a declared secret other than the current one.
pub async fn differs_in(
    conn: &mut sqlx::AnyConnection,
    sealer: &Sealer,
    checked: &Checked<'_>,
    stored: &Endpoint,
) -> Result<bool, ManagedError> {
    let mut events = checked.events.clone();
    events.sort();
    let d = checked.declared;
    if stored.url != checked.url
        || stored.description != d.description
        || stored.enabled != d.enabled
        || stored.events != events
    {
        return Ok(true);
    }
    Ok(match &checked.secret {
        Some(secret) => {
            let current = endpoints::secret_in(conn, sealer, &d.id).await?;
            current.expose_secret() != secret.expose()
        }
        None => false,
    })
}

/// Inserts or updates a declared endpoint, marked managed, on the start's transaction.
pub async fn upsert_in(
    conn: &mut sqlx::AnyConnection,
    sealer: &Sealer,
    settings: &WebhookSettings,
    checked: &Checked<'_>,
) -> Result<(), ManagedError> {
    let d = checked.declared;
    let initial = checked
        .secret
        .clone()
        .unwrap_or_else(WebhookSecret::generate);
    let (id, url, description) = (&d.id, &checked.url, &d.description);
    let created = endpoints::insert_in(
        conn,
        sealer,
        id,
        url,
        description,
        d.enabled,
        true,
        &initial,
    )
    .await?;
    if !created {
        endpoints::update_in(conn, id, url, description, d.enabled, true).await?;
        if let Some(secret) = &checked.secret {
            let current = endpoints::secret_in(conn, sealer, id).await?;
            if current.expose_secret() != secret.expose() {
                let overlap_until = store::now_ms() + settings.secret_overlap.as_millis();
                endpoints::rotate_secret_in(conn, sealer, id, secret, overlap_until).await?;
            }
        }
    }
    endpoints::replace_subscriptions_in(conn, id, &checked.events).await?;
    Ok(())
}

/// Ids of the endpoints declared in portico.toml.
pub async fn managed_ids_in(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, ManagedError> {
    Ok(endpoints::managed_ids_in(conn).await?)
}

/// Deletes a managed endpoint (one removed from portico.toml) with its pending deliveries and
/// its log; false if there was none. Nothing is sent to it afterwards: its deliveries are gone
/// and no new event subscribes it.
pub async fn delete_managed_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<bool, ManagedError> {
    match endpoints::find_in(conn, id).await? {
        Some(endpoint) if endpoint.managed => {
            endpoints::delete_in(conn, id).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
