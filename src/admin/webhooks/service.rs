//! Webhook endpoints as admins manage them, through the API and the pages. Each change and its
//! audit entry commit in one transaction: the webhook service's `*_in` methods make the change
//! on the transaction this module opens, then `crate::audit::commit_with` writes on it too. This
//! is the only way to change an endpoint or queue a delivery by hand (the service's changes are
//! crate-private); the endpoints declared in portico.toml are applied at start by
//! `webhooks::managed`, which is not an admin's change.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::admin::http::error::{Classify, Fault};
use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::http::validation::{self, FieldErrors};
use crate::admin::{Caller, http::time};
use crate::state::AppState;
use crate::webhooks::deliveries::{self, Health};
use crate::webhooks::events::EventType;
use crate::webhooks::service::subscribable;
use crate::webhooks::{
    Attempt, Delivery, Endpoint, EndpointUpdate, NewEndpoint, WebhookError, guard,
};

/// The event types an endpoint can subscribe to.
pub fn event_types() -> Vec<&'static str> {
    EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .filter(|t| subscribable(t).is_some())
        .collect()
}

impl Classify for WebhookError {
    fn fault(self) -> Fault {
        match self {
            WebhookError::EndpointNotFound | WebhookError::DeliveryNotFound => Fault::NotFound,
            WebhookError::BadUrl(_) => Fault::Field("url"),
            WebhookError::UnknownEvent(_) | WebhookError::NoEvents => Fault::Field("events"),
            WebhookError::ManagedByConfig | WebhookError::EndpointDisabled => Fault::Conflict,
            WebhookError::Store(e) => Fault::Store(e),
        }
    }
}

fn rfc3339_ms(ms: i64) -> String {
    time::rfc3339(ms.div_euclid(1000))
}

/// How an endpoint's deliveries are going.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookHealth {
    /// The newest delivery's status (`pending`, `succeeded`, `failed`); absent before the first.
    pub last_delivery_status: Option<String>,
    /// The HTTP status of the newest delivery's last attempt.
    pub last_status_code: Option<i64>,
    /// RFC 3339.
    pub last_attempt_at: Option<String>,
    /// Deliveries that ended failed and were not replayed since.
    pub failed_deliveries: i64,
    /// Deliveries waiting for an attempt or a retry.
    pub pending_deliveries: i64,
    /// RFC 3339: when the current run of failed attempts began, if one is going on.
    pub failing_since: Option<String>,
}

/// An endpoint as the admin API shows it: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why Portico disabled it (the receiver answered 410 Gone, or failed too long).
    pub disabled_reason: Option<String>,
    /// Declared in portico.toml: read-only here.
    pub managed_by_config: bool,
    pub health: WebhookHealth,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    #[serde(skip)]
    pub created_at_secs: i64,
}

impl WebhookView {
    pub fn new(e: Endpoint, h: Health) -> Self {
        Self {
            health: WebhookHealth {
                last_delivery_status: h.last_status,
                last_status_code: h.last_status_code,
                last_attempt_at: h.last_attempt_at_ms.map(rfc3339_ms),
                failed_deliveries: h.failed,
                pending_deliveries: h.pending,
                failing_since: e.failing_since_ms.map(rfc3339_ms),
            },
            id: e.id,
            url: e.url,
            description: e.description,
            events: e.events,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            managed_by_config: e.managed,
            created_at: time::rfc3339(e.created_at),
            updated_at: time::rfc3339(e.updated_at),
            created_at_secs: e.created_at,
        }
    }
}

/// What creation and rotation return: the endpoint and, once, its signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: shown this once; verify signatures with it (Standard Webhooks).
    pub secret: String,
}

/// One event's delivery to the endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    /// The `webhook-id` the receiver sees (the same on every attempt and replay).
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts in the current round (a replay starts a new round).
    pub attempts: i64,
    /// RFC 3339; for a pending delivery, when the next attempt is due.
    pub next_attempt_at: Option<String>,
    /// RFC 3339.
    pub last_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub completed_at: Option<String>,
    #[serde(skip)]
    pub created_at_secs: i64,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            next_attempt_at: (d.status == "pending").then(|| rfc3339_ms(d.next_attempt_at_ms)),
            last_attempt_at: d.last_attempt_at_ms.map(rfc3339_ms),
            completed_at: d.completed_at.map(time::rfc3339),
            created_at: time::rfc3339(d.created_at),
            created_at_secs: d.created_at,
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1 for the first attempt of a round.
    pub attempt: i64,
    /// RFC 3339.
    pub started_at: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// The first KB of the receiver's answer.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        Self {
            attempt: a.attempt,
            started_at: rfc3339_ms(a.started_at_ms),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

/// A delivery with every attempt, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempt_log: Vec<AttemptView>,
}

/// A new endpoint, or the new state of one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// An https URL on a public host (no credentials in it).
    #[serde(default)]
    pub url: String,
    /// Event types to deliver, at least one: `login.succeeded`, `login.failed`,
    /// `user.created`, `identity.linked`, `identity.unlinked`, `session.ended`,
    /// `token.reuse_detected`.
    #[serde(default)]
    pub events: Vec<String>,
    /// On creation, default true; on update, absent keeps the current value.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Up to 200 characters; absent on update keeps the current text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A checked [`WebhookInput`].
#[derive(Debug, Clone)]
pub struct ValidWebhook {
    url: String,
    events: Vec<String>,
    enabled: Option<bool>,
    description: Option<String>,
}

impl From<ValidWebhook> for NewEndpoint {
    fn from(v: ValidWebhook) -> Self {
        NewEndpoint {
            url: v.url,
            events: v.events,
            enabled: v.enabled.unwrap_or(true),
            description: v.description.unwrap_or_default(),
        }
    }
}

impl From<ValidWebhook> for EndpointUpdate {
    fn from(v: ValidWebhook) -> Self {
        EndpointUpdate {
            url: Some(v.url),
            events: Some(v.events),
            enabled: v.enabled,
            description: v.description,
        }
    }
}

impl WebhookInput {
    /// Checks every field with the rules the service applies (the SSRF guard's URL rules as
    /// this instance sets them, subscribable event types), naming each bad field.
    pub fn validate(&self, state: &AppState) -> Result<ValidWebhook, FieldErrors> {
        let allow_private = state.webhooks.settings().allow_private_targets;
        let mut errors = FieldErrors::new();
        let url = self.url.trim();
        if url.is_empty() {
            errors.add("url", "is required");
        } else if let Err(e) = guard::check_url(url, allow_private) {
            errors.add("url", e.to_string());
        }
        let mut events: Vec<String> = Vec::new();
        for raw in self
            .events
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
        {
            match subscribable(raw) {
                Some(t) if !events.iter().any(|e| e == t.as_str()) => {
                    events.push(t.as_str().to_owned())
                }
                Some(_) => {}
                None => errors.add("events", format!("`{raw}` is not an event type")),
            }
        }
        if events.is_empty() {
            errors.add("events", "choose at least one event type");
        }
        let description = self.description.as_deref();
        let description = description.map(|d| validation::text(&mut errors, "description", d, 200));
        errors.or_ok(ValidWebhook {
            url: url.to_owned(),
            events,
            enabled: self.enabled,
            description,
        })
    }
}

/// `?status=&limit=&cursor=` for a delivery log.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state: `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Checked delivery-log filters.
#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    pub status: Option<String>,
    pub page: PageRequest,
}

impl DeliveryParams {
    pub fn parse(&self) -> Result<DeliveryQuery, FieldErrors> {
        let mut errors = FieldErrors::new();
        let status = self
            .status
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(s) = status
            && !["pending", "succeeded", "failed"].contains(&s)
        {
            errors.add("status", "must be pending, succeeded or failed");
        }
        let page = PageRequest::parse(self.limit.as_deref(), self.cursor.as_deref(), &mut errors);
        errors.or_ok(DeliveryQuery {
            status: status.map(str::to_owned),
            page,
        })
    }
}

/// Endpoints, newest first, with their health.
pub async fn list(state: &AppState, page: &PageRequest) -> Result<Page<WebhookView>, WebhookError> {
    let endpoints = state
        .webhooks
        .list(page.cursor.as_ref(), page.limit + 1)
        .await?;
    let mut health = deliveries::health(&state.store, None).await?;
    let views = endpoints.into_iter().map(|e| {
        let h = health.remove(&e.id).unwrap_or_default();
        WebhookView::new(e, h)
    });
    Ok(page.of(views.collect(), |w| (w.created_at_secs, w.id.clone())))
}

/// The first page of the largest size, for the admin page.
pub async fn all(state: &AppState) -> Result<Vec<WebhookView>, WebhookError> {
    Ok(list(state, &PageRequest::FIRST_LARGEST).await?.items)
}

pub async fn get(state: &AppState, id: &str) -> Result<WebhookView, WebhookError> {
    let endpoint = state.webhooks.get(id).await?;
    let h = deliveries::health(&state.store, Some(id))
        .await?
        .remove(id)
        .unwrap_or_default();
    Ok(WebhookView::new(endpoint, h))
}

/// One page of an endpoint's delivery log, newest first.
pub async fn deliveries(
    state: &AppState,
    id: &str,
    query: &DeliveryQuery,
) -> Result<Page<DeliveryView>, WebhookError> {
    // Delivery ids grow with time: the log continues below the id alone.
    let below = query.page.cursor.as_ref().and_then(|c| c.id.parse().ok());
    let (status, limit) = (query.status.as_deref(), query.page.limit);
    let rows = state
        .webhooks
        .deliveries(id, status, below, limit + 1)
        .await?;
    let views = rows.into_iter().map(DeliveryView::from).collect();
    Ok(query
        .page
        .of(views, |d| (d.created_at_secs, d.id.to_string())))
}

pub async fn delivery(
    state: &AppState,
    id: &str,
    delivery_id: i64,
) -> Result<DeliveryDetail, WebhookError> {
    let delivery = state.webhooks.delivery(id, delivery_id).await?;
    let attempts = state.webhooks.attempts(id, delivery_id).await?;
    Ok(DeliveryDetail {
        delivery: delivery.into(),
        attempt_log: attempts.into_iter().map(AttemptView::from).collect(),
    })
}

fn details(e: &Endpoint) -> serde_json::Value {
    json!({
        "url": e.url,
        "events": e.events,
        "enabled": e.enabled,
        "description": e.description,
    })
}

/// Commits a change to endpoint `id` with its audit entry.
async fn commit(
    tx: crate::store::WriteTx,
    caller: &Caller,
    action: &str,
    id: &str,
    details: serde_json::Value,
) -> Result<(), WebhookError> {
    let target = format!("webhook:{id}");
    Ok(crate::audit::commit_with(tx, caller, action, &target, details).await?)
}

/// Commits a delivery queued by hand with its audit entry.
async fn commit_queued(
    tx: crate::store::WriteTx,
    caller: &Caller,
    action: &str,
    delivery: Delivery,
) -> Result<DeliveryView, WebhookError> {
    let details = json!({ "delivery_id": delivery.id, "event_id": delivery.event_id });
    commit(tx, caller, action, &delivery.endpoint_id, details).await?;
    Ok(delivery.into())
}

/// Creates an endpoint with a new secret, returned here only.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: impl Into<NewEndpoint>,
) -> Result<WebhookWithSecret, WebhookError> {
    let mut tx = state.store.begin_write().await?;
    let (endpoint, secret) = state.webhooks.create_in(&mut tx, new.into()).await?;
    commit(
        tx,
        caller,
        "webhook.created",
        &endpoint.id,
        details(&endpoint),
    )
    .await?;
    Ok(WebhookWithSecret {
        webhook: WebhookView::new(endpoint, Health::default()),
        secret: secret.expose().to_owned(),
    })
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: impl Into<EndpointUpdate>,
) -> Result<WebhookView, WebhookError> {
    let mut tx = state.store.begin_write().await?;
    let endpoint = state.webhooks.update_in(&mut tx, id, change.into()).await?;
    commit(tx, caller, "webhook.updated", id, details(&endpoint)).await?;
    get(state, id).await
}

/// Deletes an endpoint with its delivery log.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<(), WebhookError> {
    let mut tx = state.store.begin_write().await?;
    let endpoint = state.webhooks.delete_in(&mut tx, id).await?;
    commit(tx, caller, "webhook.deleted", id, details(&endpoint)).await
}

/// A new signing secret, returned here only; the old one also signs for
/// `webhooks.secret_overlap`.
pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<WebhookWithSecret, WebhookError> {
    let mut tx = state.store.begin_write().await?;
    let secret = state.webhooks.rotate_secret_in(&mut tx, id).await?;
    commit(tx, caller, "webhook.secret_rotated", id, json!({})).await?;
    Ok(WebhookWithSecret {
        webhook: get(state, id).await?,
        secret: secret.expose().to_owned(),
    })
}

/// Queues a `webhook.test` event for this endpoint only.
pub async fn test_ping(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<DeliveryView, WebhookError> {
    let mut tx = state.store.begin_write().await?;
    let delivery = state.webhooks.test_ping_in(&mut tx, id).await?;
    commit_queued(tx, caller, "webhook.test_sent", delivery).await
}

/// Queues a finished delivery again for a new round of attempts.
pub async fn replay(
    state: &AppState,
    caller: &Caller,
    id: &str,
    delivery_id: i64,
) -> Result<DeliveryView, WebhookError> {
    let mut tx = state.store.begin_write().await?;
    let delivery = state.webhooks.replay_in(&mut tx, id, delivery_id).await?;
    commit_queued(tx, caller, "webhook.delivery_replayed", delivery).await
}

/// Queues again every delivery of the endpoint that failed at or after `since` (Unix seconds);
/// returns how many.
pub async fn replay_failed_since(
    state: &AppState,
    caller: &Caller,
    id: &str,
    since: i64,
) -> Result<u64, WebhookError> {
    let mut tx = state.store.begin_write().await?;
    let n = state
        .webhooks
        .replay_failed_since_in(&mut tx, id, since)
        .await?;
    let details = json!({ "failed_since": since, "deliveries": n });
    commit(tx, caller, "webhook.deliveries_replayed", id, details).await?;
    Ok(n)
}
