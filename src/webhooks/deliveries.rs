//! The `webhook_deliveries` and `webhook_attempts` tables: their one repository. A delivery is
//! one event's way to one endpoint; each attempt at it is logged. The event's type and body
//! come from `events`, the endpoint's URL and secrets from `endpoints`.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::{Attempt, Delivery, endpoints, events};
use crate::store::{self, Backend, Store, StoreError};

/// The events the janitor may delete (`$1` the retention cutoff): old enough, and none of their
/// deliveries still pending. Stated here, with the deliveries' other SQL; `events::JANITOR` is
/// the rule that uses it.
pub const SETTLED_EVENTS: &str = "created_at < $1 AND NOT EXISTS (SELECT 1 FROM \
     webhook_deliveries d WHERE d.event_id = events.id AND d.status = 'pending')";

/// Queues a delivery of `event_id` to each of these endpoints, in the caller's transaction;
/// returns the new deliveries' ids.
pub(crate) async fn enqueue_in(
    conn: &mut AnyConnection,
    event_id: &str,
    endpoint_ids: &[String],
    now_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    if endpoint_ids.is_empty() {
        return Ok(Vec::new());
    }
    let values = (0..endpoint_ids.len())
        .map(|i| format!("($1, ${}, 'pending', 0, $2, $3, $2)", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO webhook_deliveries \
         (event_id, endpoint_id, status, attempts, next_attempt_at_ms, created_at, created_at_ms) \
         VALUES {values} RETURNING id"
    );
    let mut insert = sqlx::query_scalar(&sql)
        .bind(event_id)
        .bind(now_ms)
        .bind(now_ms / 1000);
    for id in endpoint_ids {
        insert = insert.bind(id);
    }
    Ok(insert.fetch_all(&mut *conn).await?)
}

// ---- The dispatcher's side --------------------------------------------------------------------

/// A claimed delivery with everything needed to send it.
#[derive(Debug)]
pub struct Job {
    pub delivery_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub attempt: i64,
    pub endpoint_id: String,
    pub endpoint: endpoints::Sender,
    pub created_at_ms: i64,
}

/// Whether any delivery is due: a cheap read, so idle workers do not take SQLite's write lock.
pub(crate) async fn any_due(store: &Store, now_ms: i64) -> Result<bool, StoreError> {
    let row: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at_ms <= $1 \
         AND (lease_until_ms IS NULL OR lease_until_ms <= $1) LIMIT 1",
    )
    .bind(now_ms)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.is_some())
}

/// Claims up to `limit` due deliveries under `token` until `lease_until_ms`, atomically: two
/// workers never hold the same delivery. Each claim counts as an attempt.
pub(crate) async fn claim(
    store: &Store,
    token: &str,
    now_ms: i64,
    lease_until_ms: i64,
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    // PostgreSQL: the row locks taken by FOR UPDATE SKIP LOCKED keep concurrent claimers apart.
    // SQLite: the statement runs under the database's single write lock.
    let lock = match store.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let claim = format!(
        "UPDATE webhook_deliveries SET lease_token = $1, lease_until_ms = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
         AND next_attempt_at_ms <= $3 AND (lease_until_ms IS NULL OR lease_until_ms <= $3) \
         ORDER BY next_attempt_at_ms LIMIT $4{lock}) \
         AND status = 'pending' AND (lease_until_ms IS NULL OR lease_until_ms <= $3) \
         RETURNING id, event_id, attempts, endpoint_id, created_at_ms"
    );
    let mut conn = store.pool().acquire().await?;
    let rows = sqlx::query(&claim)
        .bind(token)
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let event_ids = column(&rows, "event_id")?;
    let events = events::find_in(&mut conn, &event_ids, true).await?;
    let mut senders = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for r in &rows {
        let endpoint_id: String = r.try_get("endpoint_id")?;
        if !senders.contains_key(&endpoint_id) {
            let sender = endpoints::sender_in(&mut conn, &endpoint_id).await?;
            senders.insert(endpoint_id.clone(), sender);
        }
        let event_id: String = r.try_get("event_id")?;
        // An event or endpoint deleted meanwhile takes its deliveries with it.
        let (Some((event_type, body)), Some(Some(endpoint))) =
            (events.get(&event_id).cloned(), senders.get(&endpoint_id))
        else {
            continue;
        };
        jobs.push(Job {
            delivery_id: r.try_get("id")?,
            attempt: r.try_get("attempts")?,
            created_at_ms: r.try_get("created_at_ms")?,
            endpoint: endpoint.clone(),
            event_id,
            event_type,
            body,
            endpoint_id,
        });
    }
    Ok(jobs)
}

/// What one attempt produced, for the log.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl AttemptRecord {
    /// An attempt started at `started_at_ms` that got no answer (yet), with `error`.
    pub fn unanswered(started_at_ms: i64, error: Option<String>) -> Self {
        Self {
            started_at_ms,
            status_code: None,
            latency_ms: 0,
            response_body: None,
            error,
        }
    }
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    RetryAt(i64),
    Failed,
}

/// A finished attempt waiting to be written.
#[derive(Debug)]
pub struct Finished {
    pub job: Job,
    pub token: std::sync::Arc<str>,
    pub record: AttemptRecord,
    pub next: Next,
    /// The receiver answered 410 Gone: the endpoint is disabled with the attempt.
    pub gone: bool,
}

/// Logs a batch of attempts and moves their deliveries on, in one transaction (one commit for
/// many attempts is what lets a busy instance keep up). A delivery whose lease was lost
/// (another worker took it over) keeps its state; its attempt is still logged.
/// Returns how many leases were lost.
pub(crate) async fn finish_attempts(
    store: &Store,
    batch: &[Finished],
) -> Result<usize, StoreError> {
    let mut tx = store.begin_write().await?;
    let mut lost = 0;
    for chunk in batch.chunks(100) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", store::placeholders(i * 7 + 1, 7)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO webhook_attempts \
             (delivery_id, attempt, started_at_ms, status_code, latency_ms, response_body, error) \
             VALUES {values}"
        );
        let mut insert = sqlx::query(&sql);
        for f in chunk {
            insert = insert
                .bind(f.job.delivery_id)
                .bind(f.job.attempt)
                .bind(f.record.started_at_ms)
                .bind(f.record.status_code.map(i64::from))
                .bind(f.record.latency_ms)
                .bind(f.record.response_body.as_deref())
                .bind(f.record.error.as_deref());
        }
        insert.execute(&mut *tx).await?;
    }
    for f in batch {
        if !move_on(&mut tx, &f.job, &f.token, &f.record, f.next).await? {
            lost += 1;
        }
        if f.gone
            && endpoints::disable_in(
                &mut tx,
                &f.job.endpoint_id,
                "the receiver answered 410 Gone",
            )
            .await?
        {
            tracing::warn!(endpoint = %f.job.endpoint_id, "webhook endpoint disabled: the receiver answered 410 Gone");
        }
    }
    tx.commit().await?;
    Ok(lost)
}

/// Settles a delivery without an attempt (its endpoint was disabled meanwhile).
pub(crate) async fn settle_without_attempt(
    store: &Store,
    job: &Job,
    token: &str,
    error: &str,
) -> Result<(), StoreError> {
    let record = AttemptRecord::unanswered(store::now_ms(), Some(error.to_owned()));
    let mut conn = store.pool().acquire().await?;
    move_on(&mut conn, job, token, &record, Next::Failed).await?;
    Ok(())
}

async fn move_on(
    conn: &mut AnyConnection,
    job: &Job,
    token: &str,
    record: &AttemptRecord,
    next: Next,
) -> Result<bool, StoreError> {
    let (status, next_at, completed_at) = match next {
        Next::Succeeded => ("succeeded", record.started_at_ms, Some(store::now())),
        Next::Failed => ("failed", record.started_at_ms, Some(store::now())),
        Next::RetryAt(at) => ("pending", at, None),
    };
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, next_attempt_at_ms = $2, completed_at = $3, \
         lease_token = NULL, lease_until_ms = NULL, last_attempt_at_ms = $4, \
         last_status_code = $5, last_error = $6 \
         WHERE id = $7 AND lease_token = $8",
    )
    .bind(status)
    .bind(next_at)
    .bind(completed_at)
    .bind(record.started_at_ms)
    .bind(record.status_code.map(i64::from))
    .bind(record.error.as_deref())
    .bind(job.delivery_id)
    .bind(token)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Gives back the leases of attempts a stopping dispatcher cut off: each delivery is due again
/// at once, for any worker, instead of when its lease would have run out, and its claim no
/// longer counts as an attempt (none was logged). A lease already lost to another worker is
/// left alone. Returns how many were given back.
pub(crate) async fn release(
    store: &Store,
    leases: &[(i64, Arc<str>)],
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut released = 0;
    let mut conn = store.write_conn().await?;
    for (delivery_id, token) in leases {
        released += sqlx::query(
            "UPDATE webhook_deliveries SET lease_token = NULL, lease_until_ms = NULL, \
             next_attempt_at_ms = $1, attempts = attempts - 1 \
             WHERE id = $2 AND lease_token = $3 AND status = 'pending'",
        )
        .bind(now_ms)
        .bind(delivery_id)
        .bind(&**token)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(released)
}

/// Pending deliveries and the creation time (ms) of the oldest, for the queue gauges.
pub(crate) async fn queue_stats(store: &Store) -> Result<(i64, Option<i64>), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS depth, MIN(created_at_ms) AS oldest FROM webhook_deliveries \
         WHERE status = 'pending'",
    )
    .fetch_one(store.pool())
    .await?;
    Ok((row.try_get("depth")?, row.try_get("oldest")?))
}

// ---- The delivery log -------------------------------------------------------------------------

const COLUMNS: &str = "id, endpoint_id, event_id, status, attempts, next_attempt_at_ms, \
     last_attempt_at_ms, last_status_code, last_error, created_at, completed_at";

fn column(rows: &[AnyRow], name: &str) -> Result<Vec<String>, StoreError> {
    Ok(rows
        .iter()
        .map(|r| r.try_get(name))
        .collect::<Result<_, _>>()?)
}

/// Deliveries from their rows, each with its event's type.
async fn deliveries_in(
    conn: &mut AnyConnection,
    rows: &[AnyRow],
) -> Result<Vec<Delivery>, StoreError> {
    let types = events::find_in(conn, &column(rows, "event_id")?, false).await?;
    let mut deliveries = Vec::with_capacity(rows.len());
    for r in rows {
        let mut delivery = Delivery::from_row(r)?;
        // A delivery is shown with its event (as a join would: none without one).
        if let Some((event_type, _)) = types.get(&delivery.event_id) {
            delivery.event_type.clone_from(event_type);
            deliveries.push(delivery);
        }
    }
    Ok(deliveries)
}

/// Up to `limit` of an endpoint's deliveries with ids below `before`, newest first; `status`
/// filters when not empty.
pub(crate) async fn page_in(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    status: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries \
         WHERE endpoint_id = $1 AND id < $2 AND ($3 = '' OR status = $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(endpoint_id)
    .bind(before)
    .bind(status)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    deliveries_in(conn, &rows).await
}

/// One of an endpoint's deliveries: the newest of its log below `id + 1`, if that is it.
pub(crate) async fn find_in(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    id: i64,
) -> Result<Option<Delivery>, StoreError> {
    let newest = page_in(conn, endpoint_id, "", id.saturating_add(1), 1).await?;
    Ok(newest.into_iter().find(|d| d.id == id))
}

/// Every attempt of a delivery, oldest first.
pub(crate) async fn attempts_in(
    conn: &mut AnyConnection,
    delivery_id: i64,
) -> Result<Vec<Attempt>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, delivery_id, attempt, started_at_ms, status_code, latency_ms, \
         response_body, error FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id",
    )
    .bind(delivery_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Which finished deliveries of an endpoint to queue again.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Requeue {
    One(i64),
    /// Those that failed at or after this time (Unix seconds).
    FailedSince(i64),
}

/// Queues finished deliveries again, now, for a new round of attempts (same `webhook-id`); a
/// delivery still pending is left as it is. Returns how many.
pub(crate) async fn requeue_in(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    which: Requeue,
) -> Result<u64, StoreError> {
    let (condition, value) = match which {
        Requeue::One(id) => ("id = $2", id),
        Requeue::FailedSince(since) => ("status = 'failed' AND completed_at >= $2", since),
    };
    Ok(sqlx::query(&format!(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = $3, \
         lease_token = NULL, lease_until_ms = NULL, completed_at = NULL \
         WHERE endpoint_id = $1 AND status <> 'pending' AND {condition}"
    ))
    .bind(endpoint_id)
    .bind(value)
    .bind(store::now_ms())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Deletes an endpoint's deliveries and their attempts (the endpoint goes next).
pub(crate) async fn delete_of_endpoint_in(
    conn: &mut AnyConnection,
    endpoint_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN \
         (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1)",
    )
    .bind(endpoint_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(endpoint_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- Health -----------------------------------------------------------------------------------

/// Endpoint health as the admin list shows it: how the newest delivery went, and how many
/// deliveries ended failed or are still waiting.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Health {
    /// `pending`, `succeeded` or `failed`; `None` before the first delivery.
    #[sqlx(rename = "status")]
    pub last_status: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_attempt_at_ms: Option<i64>,
    /// Deliveries that ended failed (and were not replayed since).
    pub failed: i64,
    /// Deliveries waiting for their first attempt or a retry.
    pub pending: i64,
}

/// Health per endpoint id, for every endpoint (`None`) or one. Endpoints without deliveries
/// are absent: their health is `Health::default()`.
pub async fn health(
    store: &Store,
    endpoint: Option<&str>,
) -> Result<HashMap<String, Health>, StoreError> {
    let filter = endpoint.unwrap_or("");
    // The newest delivery per endpoint (ids grow with time), with the endpoint's counts.
    #[derive(sqlx::FromRow)]
    struct EndpointHealth {
        endpoint_id: String,
        #[sqlx(flatten)]
        health: Health,
    }
    let rows: Vec<EndpointHealth> = sqlx::query_as(
        "SELECT d.endpoint_id, d.status, d.last_status_code, d.last_attempt_at_ms, \
         (SELECT COUNT(*) FROM webhook_deliveries f \
           WHERE f.endpoint_id = d.endpoint_id AND f.status = 'failed') AS failed, \
         (SELECT COUNT(*) FROM webhook_deliveries p \
           WHERE p.endpoint_id = d.endpoint_id AND p.status = 'pending') AS pending \
         FROM webhook_deliveries d WHERE d.id IN (SELECT MAX(id) FROM webhook_deliveries \
         WHERE ($1 = '' OR endpoint_id = $2) GROUP BY endpoint_id)",
    )
    .bind(filter)
    .bind(filter)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.endpoint_id, r.health))
        .collect())
}

/// An endpoint's deliveries created in a window, by status, and its latest failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Window {
    pub pending: i64,
    pub failed: i64,
    pub succeeded: i64,
    /// When the latest delivery gave up (Unix seconds), whenever that was.
    pub last_failure_at: Option<i64>,
    /// Its last error, or `HTTP <status>`.
    pub last_failure: Option<String>,
}

/// The window query, `$1` the endpoint, `$2` the start of the window. Counts come from
/// `webhook_deliveries_endpoint_created` (0009), the latest failure from the partial index
/// `webhook_deliveries_failed` (0003): the cost follows the window, not the table's history.
pub const WINDOW_SQL: &str = "SELECT \
     COALESCE(SUM(CASE WHEN d.status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
     COALESCE(SUM(CASE WHEN d.status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded, \
     (SELECT f.completed_at FROM webhook_deliveries f \
       WHERE f.endpoint_id = $1 AND f.status = 'failed' \
       ORDER BY f.completed_at DESC LIMIT 1) AS last_failure_at, \
     (SELECT COALESCE(f.last_error, 'HTTP ' || CAST(f.last_status_code AS TEXT)) \
       FROM webhook_deliveries f WHERE f.endpoint_id = $1 AND f.status = 'failed' \
       ORDER BY f.completed_at DESC LIMIT 1) AS last_failure \
     FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND d.created_at >= $2";

/// An endpoint's deliveries created since `since` (Unix seconds).
pub async fn window(store: &Store, endpoint_id: &str, since: i64) -> Result<Window, StoreError> {
    Ok(sqlx::query_as(WINDOW_SQL)
        .bind(endpoint_id)
        .bind(since)
        .fetch_one(store.pool())
        .await?)
}
