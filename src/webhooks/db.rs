//! SQL for endpoints, the outbox's deliveries and the attempt log, portable across back ends.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::{Backend, Store, StoreError};

/// Milliseconds since the Unix epoch: delivery scheduling needs finer steps than seconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub const PENDING: &str = "pending";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

/// Queues a delivery of `event_id` to every enabled endpoint subscribed to `event_type`, in the
/// caller's transaction.
pub(crate) async fn enqueue_subscribed(
    conn: &mut AnyConnection,
    event_id: &str,
    event_type: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO webhook_deliveries \
         (event_id, endpoint_id, status, attempts, next_attempt_at_ms, created_at, created_at_ms) \
         SELECT $1, e.id, 'pending', 0, $2, $3, $2 \
         FROM webhook_endpoints e JOIN webhook_subscriptions s ON s.endpoint_id = e.id \
         WHERE s.event_type = $4 AND e.enabled = 1",
    )
    .bind(event_id)
    .bind(now_ms)
    .bind(now_ms / 1000)
    .bind(event_type)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Queues a delivery of `event_id` to one endpoint (a test ping); returns the delivery id.
pub(crate) async fn enqueue_for(
    conn: &mut AnyConnection,
    event_id: &str,
    endpoint_id: &str,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO webhook_deliveries \
         (event_id, endpoint_id, status, attempts, next_attempt_at_ms, created_at, created_at_ms) \
         VALUES ($1, $2, 'pending', 0, $3, $4, $3) RETURNING id",
    )
    .bind(event_id)
    .bind(endpoint_id)
    .bind(now_ms)
    .bind(now_ms / 1000)
    .fetch_one(&mut *conn)
    .await
}

/// A row of the audit log (the admin module owns its shape and redaction).
pub(crate) async fn audit(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    crate::audit::record(conn, actor, action, target, details, None)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Database(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })
}

/// Disables an endpoint that is enabled, and audits it; false if it was already disabled.
pub(crate) async fn disable_endpoint(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 \
         WHERE id = $3 AND enabled = 1",
    )
    .bind(reason)
    .bind(crate::store::now())
    .bind(endpoint_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if changed {
        audit(
            conn,
            "system",
            "webhook.endpoint_disabled",
            endpoint_id,
            serde_json::json!({ "reason": reason }),
        )
        .await?;
    }
    Ok(changed)
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
    pub url: String,
    pub enabled: bool,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until_ms: Option<i64>,
    pub failing_since_ms: Option<i64>,
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
         AND status = 'pending' AND (lease_until_ms IS NULL OR lease_until_ms <= $3)"
    );
    let claimed = sqlx::query(&claim)
        .bind(token)
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(limit)
        .execute(store.pool())
        .await?
        .rows_affected();
    if claimed == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT d.id, d.event_id, ev.type, ev.body, d.attempts, d.endpoint_id, e.url, e.enabled, \
         e.secret, e.previous_secret, e.previous_secret_until_ms, e.failing_since_ms, d.created_at_ms \
         FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.lease_token = $1 AND d.status = 'pending'",
    )
    .bind(token)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| -> Result<Job, sqlx::Error> {
            Ok(Job {
                delivery_id: r.try_get(0)?,
                event_id: r.try_get(1)?,
                event_type: r.try_get(2)?,
                body: r.try_get(3)?,
                attempt: r.try_get(4)?,
                endpoint_id: r.try_get(5)?,
                url: r.try_get(6)?,
                enabled: r.try_get::<i64, _>(7)? == 1,
                secret: r.try_get(8)?,
                previous_secret: r.try_get(9)?,
                previous_secret_until_ms: r.try_get(10)?,
                failing_since_ms: r.try_get(11)?,
                created_at_ms: r.try_get(12)?,
            })
        })
        .collect::<Result<_, _>>()?)
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
            .map(|i| {
                let p = |k: usize| format!("${}", i * 7 + k);
                format!(
                    "({}, {}, {}, {}, {}, {}, {})",
                    p(1),
                    p(2),
                    p(3),
                    p(4),
                    p(5),
                    p(6),
                    p(7)
                )
            })
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
            && disable_endpoint(
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
    let record = AttemptRecord {
        started_at_ms: now_ms(),
        status_code: None,
        latency_ms: 0,
        response_body: None,
        error: Some(error.to_owned()),
    };
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
) -> Result<bool, sqlx::Error> {
    let (status, next_at, completed_at) = match next {
        Next::Succeeded => (SUCCEEDED, record.started_at_ms, Some(crate::store::now())),
        Next::Failed => (FAILED, record.started_at_ms, Some(crate::store::now())),
        Next::RetryAt(at) => (PENDING, at, None),
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

/// Endpoint health after an attempt: a success ends a run of failures; a failure starts one or,
/// when the run has lasted `disable_after_ms`, disables the endpoint. Returns true if it disabled.
pub(crate) async fn note_health(
    store: &Store,
    job: &Job,
    succeeded: bool,
    now_ms: i64,
    disable_after_ms: i64,
) -> Result<bool, StoreError> {
    if succeeded {
        if job.failing_since_ms.is_some() {
            sqlx::query("UPDATE webhook_endpoints SET failing_since_ms = NULL WHERE id = $1")
                .bind(&job.endpoint_id)
                .execute(store.pool())
                .await?;
        }
        return Ok(false);
    }
    let mut tx = store.begin_write().await?;
    let since: Option<i64> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET failing_since_ms = COALESCE(failing_since_ms, $1) \
         WHERE id = $2 RETURNING failing_since_ms",
    )
    .bind(now_ms)
    .bind(&job.endpoint_id)
    .fetch_optional(&mut *tx)
    .await?;
    let mut disabled = false;
    if let Some(since) = since
        && now_ms - since >= disable_after_ms
    {
        let reason = format!("every delivery failed for {} s", (now_ms - since) / 1000);
        disabled = disable_endpoint(&mut tx, &job.endpoint_id, &reason).await?;
    }
    tx.commit().await?;
    Ok(disabled)
}

/// Pending deliveries and the creation time (ms) of the oldest, for the queue gauges.
pub(crate) async fn queue_stats(store: &Store) -> Result<(i64, Option<i64>), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*), MIN(created_at_ms) FROM webhook_deliveries WHERE status = 'pending'",
    )
    .fetch_one(store.pool())
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

// ---- Rows the service layer reads -------------------------------------------------------------

pub(crate) fn delivery_from_row(r: &AnyRow) -> Result<super::Delivery, sqlx::Error> {
    Ok(super::Delivery {
        id: r.try_get("id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("type")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at_ms: r.try_get("next_attempt_at_ms")?,
        last_attempt_at_ms: r.try_get("last_attempt_at_ms")?,
        last_status_code: r.try_get("last_status_code")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        completed_at: r.try_get("completed_at")?,
    })
}

pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, ev.type, d.status, \
     d.attempts, d.next_attempt_at_ms, d.last_attempt_at_ms, d.last_status_code, d.last_error, \
     d.created_at, d.completed_at";

pub(crate) fn attempt_from_row(r: &AnyRow) -> Result<super::Attempt, sqlx::Error> {
    Ok(super::Attempt {
        id: r.try_get("id")?,
        delivery_id: r.try_get("delivery_id")?,
        attempt: r.try_get("attempt")?,
        started_at_ms: r.try_get("started_at_ms")?,
        status_code: r.try_get("status_code")?,
        latency_ms: r.try_get("latency_ms")?,
        response_body: r.try_get("response_body")?,
        error: r.try_get("error")?,
    })
}
