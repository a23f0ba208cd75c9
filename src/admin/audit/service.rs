//! The audit log as the admin API and pages show it: filters from a query string, entries as
//! JSON with RFC 3339 times, one page at a time. The log itself is `crate::audit`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::admin::http::pages::url_segment;
use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::http::validation::{FieldErrors, non_empty};
use crate::audit::{AuditFilter, AuditRecord};
use crate::store::{Store, StoreError};

/// One audit entry as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(skip)]
    pub created_at_secs: i64,
    /// `admin:<email>`, `api_token:<name> (<id>)`, `cli`, `bootstrap`, or the e-mail tried at a
    /// failed sign-in.
    pub actor: String,
    /// What happened, such as `keys.rotated` or `admin.sign_in_failed`.
    pub action: String,
    /// What it happened to, such as `api_token:<id>` or `user:<id>`.
    pub target: String,
    /// Secrets are redacted.
    #[schema(value_type = Object)]
    pub details: Value,
    pub ip: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            created_at: crate::admin::http::time::rfc3339(r.created_at),
            created_at_secs: r.created_at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            details: r.details,
            ip: r.ip,
        }
    }
}

impl AuditEntry {
    pub fn display_time(&self) -> String {
        crate::admin::http::time::display(self.created_at_secs)
    }

    /// The details as (key, value) pairs for a `<dl>`: strings as they are, lists of plain
    /// values joined with commas, anything nested as compact JSON. Details that are not an
    /// object come as one pair with an empty key.
    pub fn detail_pairs(&self) -> Vec<(String, String)> {
        match &self.details {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), compact(v))).collect(),
            Value::Null => Vec::new(),
            other => vec![(String::new(), compact(other))],
        }
    }

    /// The admin page of what the entry is about, when there is one: `client:<id>`,
    /// `provider:<id>`, `webhook:<id>` (and the bare endpoint id of
    /// `webhook.endpoint_disabled`), `user:<id>`, `api_token:<id>` (the tokens page) and `keys`.
    pub fn target_link(&self) -> Option<String> {
        let page = |base: &str, id: &str| Some(format!("{base}/{}", url_segment(id)));
        match self.target.split_once(':') {
            Some(("client", id)) => page("/admin/clients", id),
            Some(("provider", id)) => page("/admin/providers", id),
            Some(("webhook", id)) => page("/admin/webhooks", id),
            Some(("user", id)) => page("/admin/users", id),
            Some(("api_token", _)) => Some("/admin/tokens".into()),
            None if self.target == "keys" => Some("/admin/keys".into()),
            None if self.action == "webhook.endpoint_disabled" && !self.target.is_empty() => {
                page("/admin/webhooks", &self.target)
            }
            _ => None,
        }
    }
}

/// A detail value as one line of text.
fn compact(value: &Value) -> String {
    let plain = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        Value::Null => Some("—".into()),
        _ => None,
    };
    match value {
        Value::Array(items) => {
            let texts: Option<Vec<String>> = items.iter().map(plain).collect();
            texts.map_or_else(|| value.to_string(), |t| t.join(", "))
        }
        other => plain(other).unwrap_or_else(|| other.to_string()),
    }
}

/// The audit filters as they arrive in a query string (API and page alike).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries with this action (e.g. `keys.rotated`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub action: Option<String>,
    /// Only entries about or by this Portico user.
    pub user_id: Option<String>,
    /// Only entries by this actor (exact).
    pub actor: Option<String>,
    /// Entries at or after this time: `2026-01-31 09:00:00 UTC` (as the pages show times;
    /// seconds optional), RFC 3339, Unix seconds, or `YYYY-MM-DDTHH:MM` in UTC.
    pub since: Option<String>,
    /// Entries before this time (same forms as `since`).
    pub until: Option<String>,
    /// The older name of `since` (used when `since` is absent).
    pub from: Option<String>,
    /// The older name of `until` (used when `until` is absent).
    pub to: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Validated audit filters and the page asked for.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub filter: AuditFilter,
    pub page: PageRequest,
}

impl AuditParams {
    /// `since`, or `from` when only the older name was given.
    pub fn since_param(&self) -> (&'static str, &Option<String>) {
        if non_empty(&self.since).is_none() && non_empty(&self.from).is_some() {
            ("from", &self.from)
        } else {
            ("since", &self.since)
        }
    }

    /// `until`, or `to` when only the older name was given.
    pub fn until_param(&self) -> (&'static str, &Option<String>) {
        if non_empty(&self.until).is_none() && non_empty(&self.to).is_some() {
            ("to", &self.to)
        } else {
            ("until", &self.until)
        }
    }

    /// The filters as a query string (empty ones left out, the time range under its current
    /// names), for links to further pages.
    pub fn query_string(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("type", &self.action),
            ("user_id", &self.user_id),
            ("actor", &self.actor),
            ("since", self.since_param().1),
            ("until", self.until_param().1),
            ("limit", &self.limit),
            ("cursor", &self.cursor),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    pub fn parse(&self) -> Result<AuditQuery, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut time = |field: &str, raw: &Option<String>| {
            let raw = non_empty(raw)?;
            let parsed = crate::admin::http::time::parse(&raw);
            if parsed.is_none() {
                errors.add(
                    field,
                    "must be a time such as 2026-01-31 09:00:00 UTC, RFC 3339, or Unix seconds",
                );
            }
            parsed
        };
        // Errors name the parameter the caller used.
        let (from_field, from_raw) = self.since_param();
        let (to_field, to_raw) = self.until_param();
        let from = time(from_field, from_raw);
        let to = time(to_field, to_raw);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            errors.add(to_field, format!("must not be before `{from_field}`"));
        }
        let page = PageRequest::parse(self.limit.as_deref(), self.cursor.as_deref(), &mut errors);
        errors.or_ok(AuditQuery {
            filter: AuditFilter {
                action: non_empty(&self.action),
                user_id: non_empty(&self.user_id),
                actor: non_empty(&self.actor),
                from,
                to,
            },
            page,
        })
    }
}

/// Entries matching `query`, newest first, one page.
pub async fn list(store: &Store, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
    let rows = crate::audit::list(
        store,
        &query.filter,
        query.page.cursor.as_ref(),
        query.page.limit + 1,
    )
    .await?;
    let entries = rows.into_iter().map(AuditEntry::from).collect();
    Ok(query
        .page
        .of(entries, |e| (e.created_at_secs, e.id.clone())))
}

/// The latest `n` entries, for the dashboard.
pub async fn recent(store: &Store, n: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = crate::audit::list(store, &AuditFilter::default(), None, n).await?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}
