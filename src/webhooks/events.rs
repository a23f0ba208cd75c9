//! Domain events (docs/WEBHOOKS.md lists them with their payloads), recorded in the
//! transactional outbox.
//!
//! Callers pass the connection of the transaction that makes the change, so an event exists
//! exactly when its change committed.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

use super::{deliveries, endpoints};
use crate::store::{self, Backend, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    LoginSucceeded,
    LoginFailed,
    UserCreated,
    IdentityLinked,
    IdentityUnlinked,
    SessionEnded,
    TokenReuseDetected,
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::LoginSucceeded,
        EventType::LoginFailed,
        EventType::UserCreated,
        EventType::IdentityLinked,
        EventType::IdentityUnlinked,
        EventType::SessionEnded,
        EventType::TokenReuseDetected,
        EventType::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LoginSucceeded => "login.succeeded",
            EventType::LoginFailed => "login.failed",
            EventType::UserCreated => "user.created",
            EventType::IdentityLinked => "identity.linked",
            EventType::IdentityUnlinked => "identity.unlinked",
            EventType::SessionEnded => "session.ended",
            EventType::TokenReuseDetected => "token.reuse_detected",
            EventType::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// A recorded event: its id (the `webhook-id` receivers see) and its exact body.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub id: String,
    pub event_type: EventType,
    pub body: String,
    pub created_at: i64,
}

/// Largest body a receiver gets (Standard Webhooks asks senders to keep payloads small).
pub const MAX_BODY_BYTES: usize = 20 * 1024;

/// Writes an event inside the caller's transaction, with a webhook delivery for every enabled
/// endpoint subscribed to its type: both commit, or neither does.
pub async fn record(
    conn: &mut AnyConnection,
    event_type: EventType,
    data: Value,
) -> Result<RecordedEvent, StoreError> {
    let event = insert(conn, event_type, data).await?;
    let subscribed = endpoints::subscribed_in(conn, event_type.as_str()).await?;
    deliveries::enqueue_in(conn, &event.id, &subscribed, store::now_ms()).await?;
    Ok(event)
}

/// Longest string kept in an event that would otherwise be over `MAX_BODY_BYTES`.
const LONG_STRING: usize = 512;

fn shorten_strings(value: &mut Value) {
    match value {
        Value::String(s) if s.len() > LONG_STRING => {
            let mut end = LONG_STRING;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
        }
        Value::Array(items) => items.iter_mut().for_each(shorten_strings),
        Value::Object(map) => map.values_mut().for_each(shorten_strings),
        _ => {}
    }
}

/// Writes the event row only (a test ping picks its single endpoint itself).
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    event_type: EventType,
    data: Value,
) -> Result<RecordedEvent, StoreError> {
    let created_at = store::now();
    let timestamp = chrono::DateTime::from_timestamp(created_at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let render = |data: &Value| {
        json!({ "type": event_type.as_str(), "timestamp": timestamp, "data": data }).to_string()
    };
    let mut body = render(&data);
    if body.len() > MAX_BODY_BYTES {
        // Free text from outside (a user agent, an upstream error) must not make the change
        // itself fail: cut long strings first, and refuse only what is still too large.
        let mut data = data;
        shorten_strings(&mut data);
        body = render(&data);
        if body.len() > MAX_BODY_BYTES {
            return Err(StoreError::EventTooLarge(body.len()));
        }
    }
    // Time-ordered (UUIDv7), so events of the same second list in the order they happened.
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    sqlx::query("INSERT INTO events (id, type, body, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(event_type.as_str())
        .bind(&body)
        .bind(created_at)
        .execute(&mut *conn)
        .await?;
    Ok(RecordedEvent {
        id,
        event_type,
        body,
        created_at,
    })
}

/// Type and, with `with_body`, body (else empty) of each of these events that exists, by id.
pub(crate) async fn find_in(
    conn: &mut AnyConnection,
    ids: &[String],
    with_body: bool,
) -> Result<HashMap<String, (String, String)>, StoreError> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(store::MAX_IN_LIST) {
        let sql = format!(
            "SELECT id, type{} FROM events WHERE id IN ({})",
            if with_body { ", body" } else { "" },
            store::placeholders(1, chunk.len())
        );
        let query = chunk.iter().fold(sqlx::query(&sql), |q, id| q.bind(id));
        for row in query.fetch_all(&mut *conn).await? {
            let body = if with_body {
                row.try_get("body")?
            } else {
                String::new()
            };
            found.insert(row.try_get("id")?, (row.try_get("type")?, body));
        }
    }
    Ok(found)
}

/// Logins through one provider in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLogins {
    /// The provider id the events name; empty when a failure named none.
    pub provider: String,
    pub succeeded: i64,
    pub failed: i64,
}

/// The SQL that reads `data.<name>` (a string) from an event's body; `name` is ours, never input.
fn data_field(backend: Backend, name: &'static str) -> String {
    match backend {
        Backend::Sqlite => format!("json_extract(body, '$.data.{name}')"),
        Backend::Postgres => format!("(body::jsonb -> 'data' ->> '{name}')"),
    }
}

/// The logins query: `$1` the start of the window, `$2` the most rows. `events_type_created`
/// (type, created_at) finds the window's logins; the provider is read from their bodies.
pub fn logins_sql(backend: Backend) -> String {
    let provider = data_field(backend, "provider");
    format!(
        "SELECT {provider} AS provider, \
         SUM(CASE WHEN type = 'login.succeeded' THEN 1 ELSE 0 END) AS succeeded, \
         SUM(CASE WHEN type = 'login.failed' THEN 1 ELSE 0 END) AS failed \
         FROM events WHERE type IN ('login.succeeded', 'login.failed') AND created_at >= $1 \
         GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT $2"
    )
}

/// Logins per provider since `since` (Unix seconds), busiest first, at most `limit` providers.
pub async fn logins_by_provider(
    store: &Store,
    since: i64,
    limit: i64,
) -> Result<Vec<ProviderLogins>, StoreError> {
    let sql = logins_sql(store.backend());
    let rows: Vec<(Option<String>, i64, i64)> = sqlx::query_as(&sql)
        .bind(since)
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    let logins = rows
        .into_iter()
        .map(|(provider, succeeded, failed)| ProviderLogins {
            provider: provider.unwrap_or_default(),
            succeeded,
            failed,
        });
    Ok(logins.collect())
}

/// One login, as the sign-in events list shows it: a `login.succeeded` or `login.failed` event.
#[derive(Debug, Clone)]
pub struct Login {
    /// The event id (the `webhook-id` receivers saw).
    pub id: String,
    pub created_at: i64,
    pub succeeded: bool,
    /// The event's `data` (docs/WEBHOOKS.md lists its fields).
    pub data: Value,
}

/// Which logins to list; `None` lets any through.
#[derive(Debug, Clone, Default)]
pub struct LoginFilter {
    /// `Some(true)`: only successes; `Some(false)`: only failures.
    pub succeeded: Option<bool>,
    pub provider: Option<String>,
    pub client_id: Option<String>,
}

/// Logins matching `filter`, newest first, up to `limit` below `before`. The outcome filter
/// uses `events_type_created`; provider and client are read from the bodies.
pub async fn logins(
    store: &Store,
    filter: &LoginFilter,
    before: Option<&store::Keyset>,
    limit: i64,
) -> Result<Vec<Login>, StoreError> {
    let (ok, failed) = (
        EventType::LoginSucceeded.as_str(),
        EventType::LoginFailed.as_str(),
    );
    let mut c = store::Conditions::default();
    c.push(match filter.succeeded {
        Some(true) => format!("type = '{ok}'"),
        Some(false) => format!("type = '{failed}'"),
        None => format!("type IN ('{ok}', '{failed}')"),
    });
    for (name, wanted) in [
        ("provider", &filter.provider),
        ("client_id", &filter.client_id),
    ] {
        if let Some(wanted) = wanted {
            let p = c.text(wanted.as_str());
            c.push(format!("{} = {p}", data_field(store.backend(), name)));
        }
    }
    let select = "SELECT id, type, body, created_at FROM events";
    let list = store::NewestFirst::by_created(select, "id");
    let rows = list.fetch_where(store.pool(), c, before, limit).await?;
    rows.iter()
        .map(|row| {
            let body: String = row.try_get("body")?;
            let body: Value = serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("an event body: {e}")))?;
            let kind: String = row.try_get("type")?;
            Ok(Login {
                id: row.try_get("id")?,
                created_at: row.try_get("created_at")?,
                succeeded: kind == ok,
                data: body.get("data").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// Events (and with them their deliveries and attempts, ON DELETE CASCADE) are kept
/// `event_retention_days`; an event with a delivery still pending stays, however old.
pub const JANITOR: crate::store::janitor::Rule = crate::store::janitor::Rule {
    table: "events",
    key: "id",
    condition: deliveries::SETTLED_EVENTS,
    cutoff: |now, s| now - s.event_retention_days * 86_400,
};
