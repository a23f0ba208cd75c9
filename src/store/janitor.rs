//! The janitor: deletes rows whose time has passed, in small batches, so tables do not grow
//! without bound and no single delete holds the (SQLite) write lock for long.
//!
//! Every instance runs it; the deletes are idempotent, so running twice costs a little work and
//! nothing else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JanitorSettings {
    /// Seconds between runs; 0 turns the janitor off.
    pub interval_secs: u64,
    /// Rows deleted per statement.
    pub batch_size: i64,
    /// Used and expired authorization codes are kept this long, so a late replay of a code is
    /// still recognised as a reuse.
    pub code_grace_secs: i64,
    /// Events (and with them their deliveries and attempts) are kept this many days.
    pub event_retention_days: i64,
}

impl Default for JanitorSettings {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            batch_size: 500,
            code_grace_secs: 86_400,
            event_retention_days: 30,
        }
    }
}

/// One kind of row to delete: `key` identifies rows of `table`; `condition` selects the expired
/// ones, with `$1` bound to the rule's cutoff time. Each table's owner declares its rule next to
/// its SQL; `startup::JANITOR_RULES` lists them all.
pub struct Rule {
    pub table: &'static str,
    pub key: &'static str,
    pub condition: &'static str,
    pub cutoff: fn(now: i64, settings: &JanitorSettings) -> i64,
}

impl Rule {
    /// Rows whose `expires_at` has passed.
    pub const fn expired(table: &'static str, key: &'static str) -> Self {
        Self {
            table,
            key,
            condition: "expires_at < $1",
            cutoff: |now, _| now,
        }
    }
}

/// Rows deleted per table in one run.
pub type JanitorReport = Vec<(&'static str, u64)>;

impl Store {
    /// One janitor pass at time `now`.
    pub async fn sweep(
        &self,
        now: i64,
        settings: &JanitorSettings,
        rules: &[&Rule],
    ) -> Result<JanitorReport, StoreError> {
        let mut report = Vec::with_capacity(rules.len());
        for rule in rules {
            let sql = format!(
                "DELETE FROM {t} WHERE {k} IN (SELECT {k} FROM {t} WHERE {c} LIMIT $2)",
                t = rule.table,
                k = rule.key,
                c = rule.condition
            );
            let cutoff = (rule.cutoff)(now, settings);
            let mut total = 0;
            loop {
                let deleted = sqlx::query(&sql)
                    .bind(cutoff)
                    .bind(settings.batch_size)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                total += deleted;
                if deleted < settings.batch_size as u64 {
                    break;
                }
                // Let other writers in between batches.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if total > 0 {
                metrics::counter!("janitor_deleted_rows_total", "table" => rule.table)
                    .increment(total);
            }
            report.push((rule.table, total));
        }
        Ok(report)
    }

    /// Runs `sweep` every `interval_secs` until the task is aborted.
    pub fn spawn_janitor(
        &self,
        settings: JanitorSettings,
        rules: &'static [&'static Rule],
    ) -> Option<tokio::task::JoinHandle<()>> {
        if settings.interval_secs == 0 {
            return None;
        }
        let store = self.clone();
        Some(tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(settings.interval_secs));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                match store.sweep(super::now(), &settings, rules).await {
                    Ok(report) => {
                        let deleted: u64 = report.iter().map(|(_, n)| n).sum();
                        if deleted > 0 {
                            tracing::info!(deleted, ?report, "janitor removed expired rows");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "janitor pass failed"),
                }
            }
        }))
    }
}
