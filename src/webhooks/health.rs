//! Endpoint health as the admin list shows it: how the newest delivery went, and how many
//! deliveries ended failed or are still waiting.

use std::collections::HashMap;

use sqlx::Row;

use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// `pending`, `succeeded` or `failed`; `None` before the first delivery.
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
pub async fn load(
    store: &Store,
    endpoint: Option<&str>,
) -> Result<HashMap<String, Health>, StoreError> {
    let filter = endpoint.unwrap_or("");
    let mut out: HashMap<String, Health> = HashMap::new();
    let counts = sqlx::query(
        "SELECT endpoint_id, status, COUNT(*) FROM webhook_deliveries \
         WHERE status <> 'succeeded' AND ($1 = '' OR endpoint_id = $2) \
         GROUP BY endpoint_id, status",
    )
    .bind(filter)
    .bind(filter)
    .fetch_all(store.pool())
    .await?;
    for row in &counts {
        let health = out.entry(row.try_get(0)?).or_default();
        let status: String = row.try_get(1)?;
        let n: i64 = row.try_get(2)?;
        match status.as_str() {
            "failed" => health.failed = n,
            "pending" => health.pending = n,
            _ => {}
        }
    }
    // The newest delivery per endpoint (ids grow with time).
    let newest = sqlx::query(
        "SELECT endpoint_id, status, last_status_code, last_attempt_at_ms FROM webhook_deliveries \
         WHERE id IN (SELECT MAX(id) FROM webhook_deliveries \
         WHERE ($1 = '' OR endpoint_id = $2) GROUP BY endpoint_id)",
    )
    .bind(filter)
    .bind(filter)
    .fetch_all(store.pool())
    .await?;
    for row in &newest {
        let health = out.entry(row.try_get(0)?).or_default();
        health.last_status = Some(row.try_get(1)?);
        health.last_status_code = row.try_get(2)?;
        health.last_attempt_at_ms = row.try_get(3)?;
    }
    Ok(out)
}
