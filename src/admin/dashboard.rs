//! `/admin`: the dashboard. Until an instance is set up, a checklist of the steps left; then
//! logins and failures per provider and webhook health over the last 24 hours, the signing keys
//! and API tokens at a glance, and the latest audit entries.
//!
//! Each figure is one aggregate query that finds its rows through an index (`events_type_created`,
//! and `webhook_deliveries_endpoint_created` from migration 0009): the cost follows the window,
//! not the tables' history. The queries are their tables' repositories' (`webhooks::events`,
//! `webhooks::deliveries`).

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::audit::service::{self as audit, AuditEntry};
use crate::admin::auth::session::AdminSession;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::Chrome;
use crate::admin::http::time;
use crate::admin::keys::service as keys_admin;
use crate::admin::tokens::pages::all_tokens;
use crate::state::AppState;
use crate::store::{self, Store, StoreError};
use crate::webhooks::deliveries;
use crate::webhooks::endpoints;
pub use crate::webhooks::events::ProviderLogins;

/// The window the dashboard counts over.
pub const WINDOW_SECS: i64 = 24 * 60 * 60;

/// Providers shown at most: `login.failed` names whatever provider a callback URL said.
const MAX_PROVIDERS: i64 = 50;

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

/// Every endpoint (by URL) with its deliveries created since `since` (Unix seconds).
pub async fn webhook_health(store: &Store, since: i64) -> Result<Vec<EndpointHealth>, StoreError> {
    let mut out = Vec::new();
    for e in endpoints::all(store).await? {
        let w = deliveries::window(store, &e.id, since).await?;
        out.push(EndpointHealth {
            pending: w.pending,
            failed: w.failed,
            succeeded: w.succeeded,
            last_failure_at: w.last_failure_at,
            last_failure: w.last_failure,
            id: e.id,
            url: e.url,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since_ms: e.failing_since_ms,
        });
    }
    Ok(out)
}

/// One step of the checklist a new instance shows until every step is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupStep {
    /// The step's element id is `setup-<id>`.
    pub id: &'static str,
    pub title: &'static str,
    pub hint: &'static str,
    /// Where to take the step.
    pub link: &'static str,
    pub done: bool,
}

/// The setup checklist, each step read from its table's owner: a provider, a client, a login
/// that succeeded through Portico, a webhook endpoint (`has_webhook`: the caller has the list).
pub async fn setup_steps(store: &Store, has_webhook: bool) -> Result<Vec<SetupStep>, StoreError> {
    let step = |id, title, hint, link, done| SetupStep {
        id,
        title,
        hint,
        link,
        done,
    };
    Ok(vec![
        step(
            "provider",
            "Add a provider",
            "Where your users sign in: Google, GitHub, any OpenID Connect provider or a SAML IdP.",
            "/admin/providers",
            crate::providers::repo::count(store).await? > 0,
        ),
        step(
            "client",
            "Create a client",
            "The app that logs its users in through Portico; it gets a client ID and secret.",
            "/admin/clients",
            crate::clients::repo::count(store).await? > 0,
        ),
        step(
            "login",
            "Try a login",
            "Give your app the client's settings (its page has them) and sign in through it once.",
            "/admin/clients",
            crate::users::repo::anyone_logged_in(store).await?,
        ),
        step(
            "webhook",
            "Add a webhook",
            "Have Portico post signed events, such as each login, to your own endpoint.",
            "/admin/webhooks",
            has_webhook,
        ),
    ])
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
    pub setup: Vec<SetupStep>,
}

impl DashboardPage {
    /// Steps of the setup checklist done so far.
    pub fn setup_done(&self) -> usize {
        self.setup.iter().filter(|s| s.done).count()
    }

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
    let webhooks = webhook_health(&state.store, since).await?;
    let setup = setup_steps(&state.store, !webhooks.is_empty()).await?;
    Ok(DashboardPage {
        chrome: Chrome::new(&session, "dashboard"),
        active_keys: keys.iter().filter(|k| k.active).count(),
        published_keys: keys.len(),
        active_tokens: tokens.iter().filter(|t| !t.is_revoked()).count(),
        logins: crate::webhooks::events::logins_by_provider(&state.store, since, MAX_PROVIDERS)
            .await?,
        webhooks,
        recent: audit::recent(&state.store, 10).await?,
        setup,
    })
}
