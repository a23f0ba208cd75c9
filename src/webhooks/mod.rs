//! Webhooks: endpoints, the delivery of outbox events to them, and the delivery log.
//!
//! `events::record` writes an event and, in the same transaction, one `webhook_deliveries` row
//! per enabled endpoint subscribed to its type. Dispatcher workers (any number of instances)
//! claim due rows under a lease, sign and POST them per Standard Webhooks 1.0, log each
//! attempt and schedule retries. `WebhookService` is what the admin UI and API call.
//!
//! Each table has one repository, the only file with its SQL: `events` (the outbox's events),
//! `endpoints` (`webhook_endpoints`, `webhook_subscriptions`) and `deliveries`
//! (`webhook_deliveries`, `webhook_attempts`). A read that needs rows of another repository's
//! table asks that repository; a change that must commit with others takes the caller's
//! connection (`*_in`).

pub mod config;
pub mod deliveries;
pub mod dispatcher;
pub mod endpoints;
pub mod events;
pub mod guard;
pub mod managed;
pub mod retry;
pub mod service;
pub mod signing;

pub use config::{HumanDuration, ManagedEndpoint, WebhookSettings};
pub use dispatcher::{Dispatcher, DispatcherHandle};
pub use service::{EndpointUpdate, NewEndpoint, WebhookError, WebhookService};
pub use signing::WebhookSecret;

use serde::Serialize;

/// An endpoint as the admin sees it (never its secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Declared in portico.toml: read-only in the UI and API.
    pub managed: bool,
    /// Why Portico disabled it (410 Gone, failing too long), if it did.
    pub disabled_reason: Option<String>,
    /// Start (ms) of the current run of failed attempts, if one is going on.
    pub failing_since_ms: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: String,
    /// The `webhook-id` receivers see (the same on every attempt).
    pub event_id: String,
    /// From the event (`events`), not the delivery's row.
    #[sqlx(default)]
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts in the current round (a replay starts a new round).
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_attempt_at_ms: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempt {
    pub id: i64,
    pub delivery_id: i64,
    pub attempt: i64,
    pub started_at_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// The first KB of the response body.
    pub response_body: Option<String>,
    pub error: Option<String>,
}
