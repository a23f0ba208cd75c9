//! What the admin UI and JSON API call: endpoint management, the delivery log, replay, ping.
//!
//! The reads are public. Each change is a `*_in` method on the caller's transaction, for the
//! crate only: the admin side (`admin::webhooks::service`) opens the transaction, makes the change
//! here, writes its audit entry on the same transaction and commits both, so no change skips
//! the audit. Secrets leave this layer only as the return value of `create_in` and
//! `rotate_secret_in` (shown once); they are stored sealed. The SQL is in the tables'
//! repositories (`endpoints`, `deliveries`, `events`).

use std::sync::Arc;

use sqlx::AnyConnection;

use super::deliveries::{self, Requeue};
use super::events::{self, EventType};
use super::guard::{self, TargetError};
use super::{Attempt, Delivery, Endpoint, WebhookSecret, WebhookSettings, endpoints};
use crate::crypto::Sealer;
use crate::store::{self, Keyset, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no such webhook endpoint")]
    EndpointNotFound,
    #[error("no such delivery")]
    DeliveryNotFound,
    #[error(transparent)]
    BadUrl(#[from] TargetError),
    #[error("unknown event type `{0}`")]
    UnknownEvent(String),
    #[error("an endpoint needs at least one event type")]
    NoEvents,
    #[error("this endpoint is managed by portico.toml; change it there")]
    ManagedByConfig,
    #[error("the endpoint is disabled; enable it before replaying")]
    EndpointDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for WebhookError {
    fn from(e: sqlx::Error) -> Self {
        WebhookError::Store(e.into())
    }
}

impl WebhookError {
    /// A stable code for the JSON API's `{"error": …}`.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::EndpointNotFound | WebhookError::DeliveryNotFound => "not_found",
            WebhookError::BadUrl(_) | WebhookError::UnknownEvent(_) | WebhookError::NoEvents => {
                "invalid_request"
            }
            WebhookError::ManagedByConfig | WebhookError::EndpointDisabled => "conflict",
            WebhookError::Store(_) => "server_error",
        }
    }
}

/// A new endpoint, as submitted.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub description: String,
}

/// A partial change; `None` leaves the field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

#[derive(Clone)]
pub struct WebhookService {
    store: Store,
    sealer: Sealer,
    settings: Arc<WebhookSettings>,
}

/// Event types an endpoint may subscribe to (a test ping goes to one endpoint on request).
pub fn subscribable(raw: &str) -> Option<EventType> {
    EventType::parse(raw).filter(|t| *t != EventType::WebhookTest)
}

pub(super) fn check_events(events: &[String]) -> Result<Vec<String>, WebhookError> {
    if events.is_empty() {
        return Err(WebhookError::NoEvents);
    }
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let t = subscribable(e).ok_or_else(|| WebhookError::UnknownEvent(e.clone()))?;
        if !out.contains(&t.as_str().to_owned()) {
            out.push(t.as_str().to_owned());
        }
    }
    Ok(out)
}

async fn endpoint_in(conn: &mut AnyConnection, id: &str) -> Result<Endpoint, WebhookError> {
    endpoints::find_in(conn, id)
        .await?
        .ok_or(WebhookError::EndpointNotFound)
}

async fn delivery_in(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    id: i64,
) -> Result<Delivery, WebhookError> {
    deliveries::find_in(conn, endpoint_id, id)
        .await?
        .ok_or(WebhookError::DeliveryNotFound)
}

impl WebhookService {
    pub fn new(store: Store, sealer: Sealer, settings: Arc<WebhookSettings>) -> Self {
        Self {
            store,
            sealer,
            settings,
        }
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    fn check_url(&self, url: &str) -> Result<String, WebhookError> {
        Ok(guard::check_url(url, self.settings.allow_private_targets)?.to_string())
    }

    /// Up to `limit` endpoints, newest first, below `below` (the last of the previous page).
    pub async fn list(
        &self,
        below: Option<&Keyset>,
        limit: i64,
    ) -> Result<Vec<Endpoint>, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(endpoints::page_in(&mut conn, below, limit).await?)
    }

    pub async fn get(&self, id: &str) -> Result<Endpoint, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        endpoint_in(&mut conn, id).await
    }

    /// Creates an endpoint; the secret is returned here and never again.
    pub(crate) async fn create_in(
        &self,
        conn: &mut AnyConnection,
        new: NewEndpoint,
    ) -> Result<(Endpoint, WebhookSecret), WebhookError> {
        let url = self.check_url(&new.url)?;
        let events = check_events(&new.events)?;
        let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
        let secret = WebhookSecret::generate();
        let (description, enabled) = (&new.description, new.enabled);
        endpoints::insert_in(
            conn,
            &self.sealer,
            &id,
            &url,
            description,
            enabled,
            false,
            &secret,
        )
        .await?;
        endpoints::replace_subscriptions_in(conn, &id, &events).await?;
        Ok((endpoint_in(conn, &id).await?, secret))
    }

    /// A partial change; enabling clears `disabled_reason` and the failure run. Refused for
    /// managed endpoints.
    pub(crate) async fn update_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        change: EndpointUpdate,
    ) -> Result<Endpoint, WebhookError> {
        let url = change
            .url
            .as_deref()
            .map(|u| self.check_url(u))
            .transpose()?;
        let events = change.events.as_deref().map(check_events).transpose()?;
        let current = endpoint_in(conn, id).await?;
        if current.managed {
            return Err(WebhookError::ManagedByConfig);
        }
        let url = url.unwrap_or(current.url);
        let description = change.description.unwrap_or(current.description);
        let enabled = change.enabled.unwrap_or(current.enabled);
        endpoints::update_in(conn, id, &url, &description, enabled, false).await?;
        if let Some(events) = events {
            endpoints::replace_subscriptions_in(conn, id, &events).await?;
        }
        endpoint_in(conn, id).await
    }

    /// Deletes an endpoint with its deliveries and their log; returns the endpoint as it was.
    pub(crate) async fn delete_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<Endpoint, WebhookError> {
        let endpoint = endpoint_in(conn, id).await?;
        if endpoint.managed {
            return Err(WebhookError::ManagedByConfig);
        }
        endpoints::delete_in(conn, id).await?;
        Ok(endpoint)
    }

    /// A new secret, returned once; the old one keeps signing for `webhooks.secret_overlap`.
    /// Refused for endpoints whose secret is set in portico.toml.
    pub(crate) async fn rotate_secret_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<WebhookSecret, WebhookError> {
        endpoint_in(conn, id).await?;
        let declared = self
            .settings
            .endpoints
            .iter()
            .any(|e| e.id == id && e.secret.is_some());
        if declared {
            return Err(WebhookError::ManagedByConfig);
        }
        let secret = WebhookSecret::generate();
        let overlap_until = store::now_ms() + self.settings.secret_overlap.as_millis();
        endpoints::rotate_secret_in(conn, &self.sealer, id, &secret, overlap_until).await?;
        Ok(secret)
    }

    /// Sends a `webhook.test` event to this endpoint only (even when it is disabled).
    pub(crate) async fn test_ping_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<Delivery, WebhookError> {
        let endpoint = endpoint_in(conn, id).await?;
        let data = serde_json::json!({ "endpoint_id": endpoint.id });
        let event = events::insert(conn, EventType::WebhookTest, data).await?;
        let ids = deliveries::enqueue_in(conn, &event.id, &[endpoint.id], store::now_ms()).await?;
        delivery_in(conn, id, ids[0]).await
    }

    /// Up to `limit` of an endpoint's deliveries with ids below `below` (from the newest when
    /// `None`), newest first; `status` filters (`pending`, `succeeded`, `failed`).
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        status: Option<&str>,
        below: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        endpoint_in(&mut conn, endpoint_id).await?;
        let (status, below) = (status.unwrap_or(""), below.unwrap_or(i64::MAX));
        Ok(deliveries::page_in(&mut conn, endpoint_id, status, below, limit).await?)
    }

    pub async fn delivery(&self, endpoint_id: &str, id: i64) -> Result<Delivery, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        delivery_in(&mut conn, endpoint_id, id).await
    }

    /// Every attempt of a delivery, oldest first.
    pub async fn attempts(&self, endpoint_id: &str, id: i64) -> Result<Vec<Attempt>, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        delivery_in(&mut conn, endpoint_id, id).await?;
        Ok(deliveries::attempts_in(&mut conn, id).await?)
    }

    /// Queues a finished delivery again, now, for a new round of attempts (same `webhook-id`).
    /// A delivery still pending is left as it is.
    pub(crate) async fn replay_in(
        &self,
        conn: &mut AnyConnection,
        endpoint_id: &str,
        id: i64,
    ) -> Result<Delivery, WebhookError> {
        self.requeue_in(conn, endpoint_id, Requeue::One(id)).await?;
        delivery_in(conn, endpoint_id, id).await
    }

    /// Queues again every delivery of the endpoint that failed at or after `since` (Unix
    /// seconds). Returns how many.
    pub(crate) async fn replay_failed_since_in(
        &self,
        conn: &mut AnyConnection,
        endpoint_id: &str,
        since: i64,
    ) -> Result<u64, WebhookError> {
        self.requeue_in(conn, endpoint_id, Requeue::FailedSince(since))
            .await
    }

    async fn requeue_in(
        &self,
        conn: &mut AnyConnection,
        endpoint_id: &str,
        which: Requeue,
    ) -> Result<u64, WebhookError> {
        if !endpoint_in(conn, endpoint_id).await?.enabled {
            return Err(WebhookError::EndpointDisabled);
        }
        if let Requeue::One(id) = which {
            delivery_in(conn, endpoint_id, id).await?;
        }
        Ok(deliveries::requeue_in(conn, endpoint_id, which).await?)
    }
}
