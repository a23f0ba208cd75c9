//! `/admin`: the dashboard. Logins and failures per provider and webhook health over the last
//! 24 hours, the signing keys and API tokens at a glance, and the latest audit entries.
//!
//! Each figure is one aggregate query that finds its rows through an index (`events_type_created`,
//! and `webhook_deliveries_endpoint_created` from migration 0009): the cost follows the window,
//! not the tables' history.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use sqlx::Row;

use crate::admin::audit::service::{self as audit, AuditEntry};
use crate::admin::auth::session::AdminSession;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::Chrome;
use crate::admin::http::time;
use crate::admin::keys::service as keys_admin;
use crate::admin::tokens::pages::all_tokens;
use crate::state::AppState;
use crate::store::{self, Backend, Store, StoreError};

/// The window the dashboard counts over.
pub const WINDOW_SECS: i64 = 24 * 60 * 60;

/// Providers shown at most: `login.failed` names whatever provider a callback URL said.
const MAX_PROVIDERS: i64 = 50;

/// Logins through one provider in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLogins {
    /// The provider id the events name; empty when a failure named none.
    pub provider: String,
    pub succeeded: i64,
    pub failed: i64,
}

/// The logins query: `$1` the start of the window, `$2` the most rows. `events_type_created`
/// (type, created_at) finds the window's logins; the provider is read from their bodies.
pub fn logins_sql(backend: Backend) -> String {
    let provider = match backend {
        Backend::Sqlite => "json_extract(body, '$.data.provider')",
        Backend::Postgres => "(body::jsonb -> 'data' ->> 'provider')",
    };
    format!(
        "SELECT {provider} AS provider, \
         SUM(CASE WHEN type = 'login.succeeded' THEN 1 ELSE 0 END) AS succeeded, \
         SUM(CASE WHEN type = 'login.failed' THEN 1 ELSE 0 END) AS failed \
         FROM events WHERE type IN ('login.succeeded', 'login.failed') AND created_at >= $1 \
         GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT $2"
    )
}

/// Logins per provider since `since` (Unix seconds), busiest first.
pub async fn logins_by_provider(
    store: &Store,
    since: i64,
) -> Result<Vec<ProviderLogins>, StoreError> {
    let sql = logins_sql(store.backend());
    let rows = sqlx::query(&sql)
        .bind(since)
        .bind(MAX_PROVIDERS)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ProviderLogins {
                provider: row
                    .try_get::<Option<String>, _>("provider")?
                    .unwrap_or_default(),
                succeeded: row.try_get("succeeded")?,
                failed: row.try_get("failed")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// One webhook endpoint's deliveries in the window, and its latest failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Start (ms) of the current run of failed attempts.
    pub failing_since_ms: Option<i64>,
    pub pending: i64,
    pub failed: i64,
    pub succeeded: i64,
    /// When the latest delivery gave up (Unix seconds), whenever that was.
    pub last_failure_at: Option<i64>,
    /// Its last error, or `HTTP <status>`.
    pub last_failure: Option<String>,
}

impl EndpointHealth {
    pub fn display_last_failure_at(&self) -> String {
        self.last_failure_at.map(time::display).unwrap_or_default()
    }

    pub fn display_failing_since(&self) -> String {
        self.failing_since_ms
            .map(|ms| time::display(ms / 1000))
            .unwrap_or_default()
    }
}

/// The webhook health query, `$1` the start of the window. Counts come from
/// `webhook_deliveries_endpoint_created` (0009), the latest failure from the partial index
/// `webhook_deliveries_failed` (0003).
pub const WEBHOOK_HEALTH_SQL: &str = "SELECT e.id, e.url, e.enabled, e.disabled_reason, \
     e.failing_since_ms, \
     COALESCE(SUM(CASE WHEN d.status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
     COALESCE(SUM(CASE WHEN d.status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded, \
     (SELECT f.completed_at FROM webhook_deliveries f \
       WHERE f.endpoint_id = e.id AND f.status = 'failed' \
       ORDER BY f.completed_at DESC LIMIT 1) AS last_failure_at, \
     (SELECT COALESCE(f.last_error, 'HTTP ' || CAST(f.last_status_code AS TEXT)) \
       FROM webhook_deliveries f WHERE f.endpoint_id = e.id AND f.status = 'failed' \
       ORDER BY f.completed_at DESC LIMIT 1) AS last_failure \
     FROM webhook_endpoints e \
     LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id AND d.created_at >= $1 \
     GROUP BY e.id ORDER BY e.url, e.id";

/// Every endpoint's deliveries created since `since` (Unix seconds), by status.
pub async fn webhook_health(store: &Store, since: i64) -> Result<Vec<EndpointHealth>, StoreError> {
    let rows = sqlx::query(WEBHOOK_HEALTH_SQL)
        .bind(since)
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(EndpointHealth {
                id: row.try_get("id")?,
                url: row.try_get("url")?,
                enabled: row.try_get::<i64, _>("enabled")? != 0,
                disabled_reason: row.try_get("disabled_reason")?,
                failing_since_ms: row.try_get("failing_since_ms")?,
                pending: row.try_get("pending")?,
                failed: row.try_get("failed")?,
                succeeded: row.try_get("succeeded")?,
                last_failure_at: row.try_get("last_failure_at")?,
                last_failure: row.try_get("last_failure")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub active_keys: usize,
    pub published_keys: usize,
    pub active_tokens: usize,
    pub logins: Vec<ProviderLogins>,
    pub webhooks: Vec<EndpointHealth>,
    pub recent: Vec<AuditEntry>,
}

impl DashboardPage {
    pub fn total_succeeded(&self) -> i64 {
        self.logins.iter().map(|l| l.succeeded).sum()
    }

    pub fn total_failed(&self) -> i64 {
        self.logins.iter().map(|l| l.failed).sum()
    }

    /// The scale of the bars: the busiest provider's logins (at least 1).
    pub fn bar_max(&self) -> i64 {
        self.logins
            .iter()
            .map(|l| l.succeeded.max(l.failed))
            .max()
            .unwrap_or(0)
            .max(1)
    }
}

pub async fn dashboard(
    session: AdminSession,
    state: web::Data<AppState>,
) -> Result<DashboardPage, PageError> {
    let since = store::now() - WINDOW_SECS;
    let keys = keys_admin::all(&state).await?;
    let tokens = all_tokens(&state).await?;
    Ok(DashboardPage {
        chrome: Chrome::new(&session, "dashboard"),
        active_keys: keys.iter().filter(|k| k.active).count(),
        published_keys: keys.len(),
        active_tokens: tokens.iter().filter(|t| !t.is_revoked()).count(),
        logins: logins_by_provider(&state.store, since).await?,
        webhooks: webhook_health(&state.store, since).await?,
        recent: audit::recent(&state.store, 10).await?,
    })
}
