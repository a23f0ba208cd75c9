//! The `webhook_endpoints` and `webhook_subscriptions` tables: their one repository. Changes take
//! the caller's connection, so they commit with whatever the caller writes beside them (the
//! admin side's audit entry, the start's whole set of declared endpoints).
//!
//! An endpoint's secrets are sealed, each bound to its column: rotating re-seals the current
//! secret for `previous_secret`, which keeps signing during the overlap.

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Endpoint, WebhookSecret, deliveries};
use crate::crypto::Sealer;
use crate::store::sealed::{WEBHOOK_PREVIOUS_SECRET, WEBHOOK_SECRET};
use crate::store::{self, Keyset, Store, StoreError, flag};

const COLUMNS: &str = "id, url, description, enabled, managed, disabled_reason, \
     failing_since_ms, created_at, updated_at";

async fn endpoints_in(
    conn: &mut AnyConnection,
    rows: Vec<AnyRow>,
) -> Result<Vec<Endpoint>, StoreError> {
    let mut endpoints = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        let events = sqlx::query_scalar(
            "SELECT event_type FROM webhook_subscriptions WHERE endpoint_id = $1 \
             ORDER BY event_type",
        )
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?;
        endpoints.push(Endpoint {
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            events,
            enabled: flag(row, "enabled")?,
            managed: flag(row, "managed")?,
            disabled_reason: row.try_get("disabled_reason")?,
            failing_since_ms: row.try_get("failing_since_ms")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            id,
        });
    }
    Ok(endpoints)
}

/// Up to `limit` endpoints below the key (`created_at`, `id`), newest first.
pub(crate) async fn page_in(
    conn: &mut AnyConnection,
    below: Option<&Keyset>,
    limit: i64,
) -> Result<Vec<Endpoint>, StoreError> {
    let select = format!("SELECT {COLUMNS} FROM webhook_endpoints");
    let list = store::NewestFirst::by_created(&select, "id");
    let rows = list.fetch(&mut *conn, below, limit).await?;
    endpoints_in(conn, rows).await
}

/// Every endpoint, by URL.
pub async fn all(store: &Store) -> Result<Vec<Endpoint>, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints ORDER BY url, id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    endpoints_in(&mut conn, rows).await
}

pub(crate) async fn find_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<Endpoint>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(endpoints_in(conn, rows).await?.pop())
}

/// Ids of the endpoints declared in portico.toml.
pub(crate) async fn managed_ids_in(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE managed = 1 ORDER BY id")
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Ids of the enabled endpoints subscribed to `event_type`.
pub(crate) async fn subscribed_in(
    conn: &mut AnyConnection,
    event_type: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT e.id FROM webhook_endpoints e \
         JOIN webhook_subscriptions s ON s.endpoint_id = e.id \
         WHERE s.event_type = $1 AND e.enabled = 1",
    )
    .bind(event_type)
    .fetch_all(&mut *conn)
    .await?)
}

/// Inserts an endpoint unless one has this id; true if it did.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: &str,
    url: &str,
    description: &str,
    enabled: bool,
    managed: bool,
    secret: &WebhookSecret,
) -> Result<bool, StoreError> {
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
    .bind(sealer.seal_str(secret.expose(), WEBHOOK_SECRET.target(id)))
    .bind(store::now())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Sets an endpoint's URL, description and enabled flag; enabling it clears why Portico had
/// disabled it. An admin's change (`managed` false) also ends the run of failures; the start
/// that applies portico.toml (`managed` true) marks the endpoint managed and leaves the run.
pub(crate) async fn update_in(
    conn: &mut AnyConnection,
    id: &str,
    url: &str,
    description: &str,
    enabled: bool,
    managed: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, description = $2, enabled = $3, managed = $4, \
         disabled_reason = CASE WHEN $3 = 1 THEN NULL ELSE disabled_reason END, \
         failing_since_ms = CASE WHEN $3 = 1 AND $4 = 0 THEN NULL ELSE failing_since_ms END, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(url)
    .bind(description)
    .bind(i64::from(enabled))
    .bind(i64::from(managed))
    .bind(store::now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn replace_subscriptions_in(
    conn: &mut AnyConnection,
    id: &str,
    events: &[String],
) -> Result<(), StoreError> {
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

/// Deletes an endpoint with its deliveries and their log.
pub(crate) async fn delete_in(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    // Children first: the `Any` driver does not promise that foreign keys cascade on SQLite
    // connections made elsewhere.
    deliveries::delete_of_endpoint_in(conn, id).await?;
    replace_subscriptions_in(conn, id, &[]).await?;
    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The current secret, opened.
pub(crate) async fn secret_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: &str,
) -> Result<SecretString, StoreError> {
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(sealer.open_string(&sealed, WEBHOOK_SECRET.target(id))?)
}

/// Makes `secret` current; the current one becomes the previous, signing until `overlap_until_ms`.
pub(crate) async fn rotate_secret_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    id: &str,
    secret: &WebhookSecret,
    overlap_until_ms: i64,
) -> Result<(), StoreError> {
    // Re-seal the old secret for its new column: a sealed value is bound to its column.
    let old = secret_in(conn, sealer, id).await?;
    let previous = sealer.seal_str(old.expose_secret(), WEBHOOK_PREVIOUS_SECRET.target(id));
    sqlx::query(
        "UPDATE webhook_endpoints SET secret = $1, previous_secret = $2, \
         previous_secret_until_ms = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(sealer.seal_str(secret.expose(), WEBHOOK_SECRET.target(id)))
    .bind(previous)
    .bind(overlap_until_ms)
    .bind(store::now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the dispatcher needs of an endpoint to send to it.
#[derive(Debug, Clone)]
pub struct Sender {
    pub url: String,
    pub enabled: bool,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_until_ms: Option<i64>,
    pub failing_since_ms: Option<i64>,
}

pub(crate) async fn sender_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<Sender>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT url, enabled, secret, previous_secret, previous_secret_until_ms, \
         failing_since_ms FROM webhook_endpoints WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Sender {
        url: row.try_get("url")?,
        enabled: flag(&row, "enabled")?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_secret_until_ms: row.try_get("previous_secret_until_ms")?,
        failing_since_ms: row.try_get("failing_since_ms")?,
    }))
}

/// Disables an endpoint that is enabled, and audits it (Portico's own decision, so the actor
/// is `system`); false if it was already disabled.
pub(crate) async fn disable_in(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 \
         WHERE id = $3 AND enabled = 1",
    )
    .bind(reason)
    .bind(store::now())
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if changed {
        let details = serde_json::json!({ "reason": reason });
        crate::audit::record(
            conn,
            "system",
            "webhook.endpoint_disabled",
            id,
            details,
            None,
        )
        .await?;
    }
    Ok(changed)
}

/// Endpoint health after an attempt: a success ends a run of failures (`failing_since_ms`, as
/// the attempt saw it); a failure starts one or, when the run has lasted `disable_after_ms`,
/// disables the endpoint. Returns true if it disabled.
pub(crate) async fn note_health(
    store: &Store,
    id: &str,
    failing_since_ms: Option<i64>,
    succeeded: bool,
    now_ms: i64,
    disable_after_ms: i64,
) -> Result<bool, StoreError> {
    if succeeded {
        if failing_since_ms.is_some() {
            sqlx::query("UPDATE webhook_endpoints SET failing_since_ms = NULL WHERE id = $1")
                .bind(id)
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
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let mut disabled = false;
    if let Some(since) = since
        && now_ms - since >= disable_after_ms
    {
        let reason = format!("every delivery failed for {} s", (now_ms - since) / 1000);
        disabled = disable_in(&mut tx, id, &reason).await?;
    }
    tx.commit().await?;
    Ok(disabled)
}
