//! What the admin UI and JSON API call: endpoint management, the delivery log, replay, ping.
//!
//! Every change is one transaction. Secrets leave this layer only as the return value of
//! `create` and `rotate_secret` (shown once); they are stored sealed.

use std::sync::Arc;

use sqlx::{AnyConnection, Row};

use super::db::{self, DELIVERY_COLUMNS};
use super::events::{self, EventType};
use super::guard::{self, TargetError};
use super::{Attempt, Delivery, Endpoint, WebhookSecret, WebhookSettings};
use crate::crypto::{SealTarget, Sealer};
use crate::store::{Store, StoreError};

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

/// A page of a list: at most `limit` items older than `cursor` (from the previous page).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl Page {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 200)
    }
}

/// Items and the cursor of the next page (`None` on the last).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Clone)]
pub struct WebhookService {
    store: Store,
    sealer: Sealer,
    settings: Arc<WebhookSettings>,
}

const ENDPOINT_COLUMNS: &str = "id, url, description, enabled, managed, disabled_reason, \
     failing_since_ms, created_at, updated_at";

/// Event types an endpoint may subscribe to (a test ping goes to one endpoint on request).
pub fn subscribable(raw: &str) -> Option<EventType> {
    EventType::parse(raw).filter(|t| *t != EventType::WebhookTest)
}

fn check_events(events: &[String]) -> Result<Vec<String>, WebhookError> {
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

    /// Endpoints, newest first.
    pub async fn list(&self, page: &Page) -> Result<Listing<Endpoint>, WebhookError> {
        let limit = page.limit();
        let (cursor_at, cursor_id) = match page.cursor.as_deref().and_then(|c| c.split_once(':')) {
            Some((at, id)) => (at.parse::<i64>().unwrap_or(i64::MAX), id.to_owned()),
            None => (i64::MAX, String::new()),
        };
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE created_at < $1 OR (created_at = $1 AND ($2 = '' OR id < $2)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        ))
        .bind(cursor_at)
        .bind(&cursor_id)
        .bind(limit + 1)
        .fetch_all(self.store.pool())
        .await?;
        let mut conn = self.store.pool().acquire().await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            items.push(endpoint_from_row(&mut conn, row).await?);
        }
        let next_cursor = (rows.len() as i64 > limit)
            .then(|| {
                items
                    .last()
                    .map(|e: &Endpoint| format!("{}:{}", e.created_at, e.id))
            })
            .flatten();
        Ok(Listing { items, next_cursor })
    }

    pub async fn get(&self, id: &str) -> Result<Endpoint, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        fetch_endpoint(&mut conn, id).await
    }

    /// Creates an endpoint; the secret is returned here and never again.
    pub async fn create(
        &self,
        new: NewEndpoint,
    ) -> Result<(Endpoint, WebhookSecret), WebhookError> {
        let mut tx = self.store.begin_write().await?;
        let created = self.create_in(&mut tx, new).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// `create` on the caller's transaction, which commits it (the admin side adds its audit
    /// entry to the same transaction). The `*_in` methods below follow the same rule.
    pub async fn create_in(
        &self,
        conn: &mut AnyConnection,
        new: NewEndpoint,
    ) -> Result<(Endpoint, WebhookSecret), WebhookError> {
        let url = self.check_url(&new.url)?;
        let events = check_events(&new.events)?;
        let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
        let secret = WebhookSecret::generate();
        insert_endpoint(
            conn,
            &self.sealer,
            &id,
            &url,
            &new.description,
            new.enabled,
            false,
            &secret,
        )
        .await?;
        replace_subscriptions(conn, &id, &events).await?;
        let endpoint = fetch_endpoint(conn, &id).await?;
        Ok((endpoint, secret))
    }

    pub async fn update(&self, id: &str, change: EndpointUpdate) -> Result<Endpoint, WebhookError> {
        let mut tx = self.store.begin_write().await?;
        let endpoint = self.update_in(&mut tx, id, change).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    pub async fn update_in(
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
        let current = fetch_endpoint(conn, id).await?;
        if current.managed {
            return Err(WebhookError::ManagedByConfig);
        }
        let enabled = change.enabled.unwrap_or(current.enabled);
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, description = $2, enabled = $3, \
             disabled_reason = CASE WHEN $3 = 1 THEN NULL ELSE disabled_reason END, \
             failing_since_ms = CASE WHEN $3 = 1 THEN NULL ELSE failing_since_ms END, \
             updated_at = $4 WHERE id = $5",
        )
        .bind(url.unwrap_or(current.url))
        .bind(change.description.unwrap_or(current.description))
        .bind(i64::from(enabled))
        .bind(crate::store::now())
        .bind(id)
        .execute(&mut *conn)
        .await?;
        if let Some(events) = events {
            replace_subscriptions(conn, id, &events).await?;
        }
        fetch_endpoint(conn, id).await
    }

    /// Deletes an endpoint with its deliveries and their log.
    pub async fn delete(&self, id: &str) -> Result<(), WebhookError> {
        let mut tx = self.store.begin_write().await?;
        self.delete_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Returns the endpoint as it was.
    pub async fn delete_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<Endpoint, WebhookError> {
        let endpoint = fetch_endpoint(conn, id).await?;
        if endpoint.managed {
            return Err(WebhookError::ManagedByConfig);
        }
        delete_endpoint(conn, id).await?;
        Ok(endpoint)
    }

    /// A new secret, returned once; the old one keeps signing for `webhooks.secret_overlap`.
    /// Refused for endpoints whose secret is set in portico.toml.
    pub async fn rotate_secret(&self, id: &str) -> Result<WebhookSecret, WebhookError> {
        let mut tx = self.store.begin_write().await?;
        let secret = self.rotate_secret_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(secret)
    }

    pub async fn rotate_secret_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<WebhookSecret, WebhookError> {
        fetch_endpoint(conn, id).await?;
        let declared = self
            .settings
            .endpoints
            .iter()
            .any(|e| e.id == id && e.secret.is_some());
        if declared {
            return Err(WebhookError::ManagedByConfig);
        }
        let secret = WebhookSecret::generate();
        rotate_in(
            conn,
            &self.sealer,
            id,
            &secret,
            db::now_ms() + self.settings.secret_overlap.as_millis(),
        )
        .await?;
        Ok(secret)
    }

    /// Sends a `webhook.test` event to this endpoint only (even when it is disabled).
    pub async fn test_ping(&self, id: &str) -> Result<Delivery, WebhookError> {
        let mut tx = self.store.begin_write().await?;
        let delivery = self.test_ping_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(delivery)
    }

    pub async fn test_ping_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<Delivery, WebhookError> {
        let endpoint = fetch_endpoint(conn, id).await?;
        let event = events::insert(
            conn,
            EventType::WebhookTest,
            serde_json::json!({ "endpoint_id": endpoint.id }),
        )
        .await?;
        let delivery = db::enqueue_for(conn, &event.id, id, db::now_ms()).await?;
        fetch_delivery(conn, id, delivery).await
    }

    /// An endpoint's deliveries, newest first; `status` filters (`pending`, `succeeded`, `failed`).
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        status: Option<&str>,
        page: &Page,
    ) -> Result<Listing<Delivery>, WebhookError> {
        let limit = page.limit();
        let before = page
            .cursor
            .as_deref()
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        let mut conn = self.store.pool().acquire().await?;
        fetch_endpoint(&mut conn, endpoint_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id \
             WHERE d.endpoint_id = $1 AND d.id < $2 AND ($3 = '' OR d.status = $3) \
             ORDER BY d.id DESC LIMIT $4"
        ))
        .bind(endpoint_id)
        .bind(before)
        .bind(status.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&mut *conn)
        .await?;
        let mut items = rows
            .iter()
            .map(db::delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = (items.len() as i64 > limit).then(|| {
            items.truncate(limit as usize);
            items.last().map(|d| d.id.to_string()).unwrap_or_default()
        });
        Ok(Listing { items, next_cursor })
    }

    pub async fn delivery(&self, endpoint_id: &str, id: i64) -> Result<Delivery, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        fetch_delivery(&mut conn, endpoint_id, id).await
    }

    /// The exact body sent for a delivery.
    pub async fn delivery_body(&self, endpoint_id: &str, id: i64) -> Result<String, WebhookError> {
        sqlx::query_scalar(
            "SELECT ev.body FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id \
             WHERE d.id = $1 AND d.endpoint_id = $2",
        )
        .bind(id)
        .bind(endpoint_id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or(WebhookError::DeliveryNotFound)
    }

    /// Every attempt of a delivery, oldest first.
    pub async fn attempts(&self, endpoint_id: &str, id: i64) -> Result<Vec<Attempt>, WebhookError> {
        let mut conn = self.store.pool().acquire().await?;
        fetch_delivery(&mut conn, endpoint_id, id).await?;
        let rows = sqlx::query(
            "SELECT id, delivery_id, attempt, started_at_ms, status_code, latency_ms, \
             response_body, error FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .iter()
            .map(db::attempt_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Queues a finished delivery again, now, for a new round of attempts (same `webhook-id`).
    /// A delivery still pending is left as it is.
    pub async fn replay(&self, endpoint_id: &str, id: i64) -> Result<Delivery, WebhookError> {
        let mut tx = self.store.begin_write().await?;
        let delivery = self.replay_in(&mut tx, endpoint_id, id).await?;
        tx.commit().await?;
        Ok(delivery)
    }

    pub async fn replay_in(
        &self,
        conn: &mut AnyConnection,
        endpoint_id: &str,
        id: i64,
    ) -> Result<Delivery, WebhookError> {
        if !fetch_endpoint(conn, endpoint_id).await?.enabled {
            return Err(WebhookError::EndpointDisabled);
        }
        fetch_delivery(conn, endpoint_id, id).await?;
        requeue(conn, "d.id = $2", endpoint_id, id).await?;
        fetch_delivery(conn, endpoint_id, id).await
    }

    /// Queues again every delivery of the endpoint that failed at or after `since` (Unix
    /// seconds). Returns how many.
    pub async fn replay_failed_since(
        &self,
        endpoint_id: &str,
        since: i64,
    ) -> Result<u64, WebhookError> {
        let mut tx = self.store.begin_write().await?;
        if !fetch_endpoint(&mut tx, endpoint_id).await?.enabled {
            return Err(WebhookError::EndpointDisabled);
        }
        let n = requeue(
            &mut tx,
            "d.status = 'failed' AND d.completed_at >= $2",
            endpoint_id,
            since,
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}

async fn requeue(
    conn: &mut AnyConnection,
    condition: &str,
    endpoint_id: &str,
    value: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(&format!(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = $3, \
         lease_token = NULL, lease_until_ms = NULL, completed_at = NULL \
         WHERE id IN (SELECT d.id FROM webhook_deliveries d \
         WHERE d.endpoint_id = $1 AND d.status <> 'pending' AND {condition})"
    ))
    .bind(endpoint_id)
    .bind(value)
    .bind(db::now_ms())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

async fn fetch_delivery(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    id: i64,
) -> Result<Delivery, WebhookError> {
    let row = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id \
         WHERE d.id = $1 AND d.endpoint_id = $2"
    ))
    .bind(id)
    .bind(endpoint_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(WebhookError::DeliveryNotFound)?;
    Ok(db::delivery_from_row(&row)?)
}

pub(super) async fn fetch_endpoint(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Endpoint, WebhookError> {
    let row = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(WebhookError::EndpointNotFound)?;
    endpoint_from_row(conn, &row).await
}

async fn endpoint_from_row(
    conn: &mut AnyConnection,
    row: &sqlx::any::AnyRow,
) -> Result<Endpoint, WebhookError> {
    let id: String = row.try_get("id")?;
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM webhook_subscriptions WHERE endpoint_id = $1 ORDER BY event_type",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Endpoint {
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        events,
        enabled: row.try_get::<i64, _>("enabled")? == 1,
        managed: row.try_get::<i64, _>("managed")? == 1,
        disabled_reason: row.try_get("disabled_reason")?,
        failing_since_ms: row.try_get("failing_since_ms")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        id,
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_endpoint(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: &str,
    url: &str,
    description: &str,
    enabled: bool,
    managed: bool,
    secret: &WebhookSecret,
) -> Result<bool, sqlx::Error> {
    let now = crate::store::now();
    let inserted = sqlx::query(
        "INSERT INTO webhook_endpoints \
         (id, url, description, enabled, managed, secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(url)
    .bind(description)
    .bind(i64::from(enabled))
    .bind(i64::from(managed))
    .bind(sealer.seal_str(
        secret.expose(),
        SealTarget::new("webhook_endpoints", "secret", id),
    ))
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

pub(super) async fn replace_subscriptions(
    conn: &mut AnyConnection,
    id: &str,
    events: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM webhook_subscriptions WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for event in events {
        sqlx::query("INSERT INTO webhook_subscriptions (endpoint_id, event_type) VALUES ($1, $2)")
            .bind(id)
            .bind(event)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn delete_endpoint(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    // Children first: the `Any` driver does not promise that foreign keys cascade on SQLite
    // connections made elsewhere.
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN \
         (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    for table in ["webhook_deliveries", "webhook_subscriptions"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE endpoint_id = $1"))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Makes `secret` current; the current one becomes the previous, signing until `overlap_until_ms`.
pub(super) async fn rotate_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: &str,
    secret: &WebhookSecret,
    overlap_until_ms: i64,
) -> Result<(), WebhookError> {
    let current: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    // Re-seal the old secret for its new column: a sealed value is bound to its column.
    let old = sealer
        .open(&current, SealTarget::new("webhook_endpoints", "secret", id))
        .map_err(StoreError::from)?;
    use secrecy::ExposeSecret;
    let previous = sealer.seal(
        old.expose_secret(),
        SealTarget::new("webhook_endpoints", "previous_secret", id),
    );
    sqlx::query(
        "UPDATE webhook_endpoints SET secret = $1, previous_secret = $2, \
         previous_secret_until_ms = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(sealer.seal_str(
        secret.expose(),
        SealTarget::new("webhook_endpoints", "secret", id),
    ))
    .bind(previous)
    .bind(overlap_until_ms)
    .bind(crate::store::now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
