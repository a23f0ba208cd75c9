//! The audit log: who changed what, when and from where.
//!
//! `record` takes the connection of the transaction that makes the change, so an entry exists
//! exactly when its change committed. Details are JSON with anything secret-looking redacted.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use utoipa::{IntoParams, ToSchema};

use super::pagination::{Cursor, Page, PageRequest};
use super::validation::FieldErrors;
use crate::crypto::random_bytes;
use crate::store::{self, Store, StoreError};

const REDACTED: &str = "[redacted]";

/// Writes an audit entry inside the caller's transaction.
pub async fn record(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    target: &str,
    details: Value,
    ip: Option<&str>,
) -> Result<(), StoreError> {
    let details = redact(details);
    sqlx::query(
        "INSERT INTO audit_log (id, created_at, actor, action, target, details, ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(store::now())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(details.to_string())
    .bind(ip)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records `action` on `target` by `caller` in the change's transaction `tx`, then commits
/// both: the admin services' last step.
pub async fn commit_with(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    caller: &super::Caller,
    action: &str,
    target: &str,
    details: Value,
) -> Result<(), StoreError> {
    record(&mut tx, &caller.actor, action, target, details, caller.ip()).await?;
    tx.commit().await?;
    Ok(())
}

/// Ids sort in creation order (microseconds, then randomness), so newest-first is stable.
fn new_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let mut random = [0u8; 5];
    random_bytes(&mut random);
    let tail: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("aud_{micros:016x}{tail}")
}

/// Whether a details key names a secret: its value never reaches the log.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("secret")
        || key.contains("password")
        || key.contains("private")
        || key == "token"
        || key.ends_with("_token")
}

/// Replaces secret-looking values at any depth.
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if is_secret_key(&k) {
                        (k, Value::String(REDACTED.into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

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

impl AuditEntry {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let created_at: i64 = row.try_get("created_at")?;
        let details: String = row.try_get("details")?;
        Ok(Self {
            id: row.try_get("id")?,
            created_at: super::time::rfc3339(created_at),
            created_at_secs: created_at,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row
                .try_get::<Option<String>, _>("target")?
                .unwrap_or_default(),
            details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
            ip: row.try_get("ip")?,
        })
    }

    pub fn display_time(&self) -> String {
        super::time::display(self.created_at_secs)
    }

    pub fn details_text(&self) -> String {
        match &self.details {
            Value::Object(map) if map.is_empty() => String::new(),
            other => other.to_string(),
        }
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
    /// Entries at or after this time (RFC 3339, Unix seconds, or `YYYY-MM-DDTHH:MM` in UTC).
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

/// Validated audit filters.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub user_id: Option<String>,
    pub actor: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: PageRequest,
}

fn non_empty(raw: &Option<String>) -> Option<String> {
    raw.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
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
            let parsed = super::time::parse(&raw);
            if parsed.is_none() {
                errors.add(field, "must be an RFC 3339 time or Unix seconds");
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
            action: non_empty(&self.action),
            user_id: non_empty(&self.user_id),
            actor: non_empty(&self.actor),
            from,
            to,
            page,
        })
    }
}

enum Bind {
    Int(i64),
    Text(String),
}

/// Entries matching `query`, newest first, one page.
pub async fn list(store: &Store, query: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    let param = |bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        format!("${}", binds.len())
    };
    if let Some(action) = &query.action {
        let p = param(Bind::Text(action.clone()), &mut binds);
        conditions.push(format!("action = {p}"));
    }
    if let Some(user) = &query.user_id {
        // Each placeholder is bound once: SQLite and PostgreSQL differ on reusing one.
        let t = param(Bind::Text(format!("user:{user}")), &mut binds);
        let a = param(Bind::Text(format!("user:{user}")), &mut binds);
        conditions.push(format!("(target = {t} OR actor = {a})"));
    }
    if let Some(actor) = &query.actor {
        let p = param(Bind::Text(actor.clone()), &mut binds);
        conditions.push(format!("actor = {p}"));
    }
    if let Some(from) = query.from {
        let p = param(Bind::Int(from), &mut binds);
        conditions.push(format!("created_at >= {p}"));
    }
    if let Some(to) = query.to {
        let p = param(Bind::Int(to), &mut binds);
        conditions.push(format!("created_at < {p}"));
    }
    if let Some(cursor) = &query.page.cursor {
        let before = param(Bind::Int(cursor.at), &mut binds);
        let same = param(Bind::Int(cursor.at), &mut binds);
        let id = param(Bind::Text(cursor.id.clone()), &mut binds);
        conditions.push(format!(
            "(created_at < {before} OR (created_at = {same} AND id < {id}))"
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = param(Bind::Int(query.page.limit + 1), &mut binds);
    let sql = format!(
        "SELECT id, created_at, actor, action, target, details, ip FROM audit_log {filter} \
         ORDER BY created_at DESC, id DESC LIMIT {limit}"
    );
    let mut q = sqlx::query(&sql);
    for bind in binds {
        q = match bind {
            Bind::Int(v) => q.bind(v),
            Bind::Text(v) => q.bind(v),
        };
    }
    let rows = q.fetch_all(store.pool()).await?;
    let entries = rows
        .iter()
        .map(AuditEntry::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(entries, query.page.limit, |e| Cursor {
        at: e.created_at_secs,
        id: e.id.clone(),
    }))
}

/// The latest `n` entries, for the dashboard.
pub async fn recent(store: &Store, n: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let query = AuditQuery {
        action: None,
        user_id: None,
        actor: None,
        from: None,
        to: None,
        page: PageRequest {
            limit: n,
            cursor: None,
        },
    };
    Ok(list(store, &query).await?.items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let out = redact(json!({
            "name": "ci",
            "token_id": "tok_1",
            "client_secret": "s3cret",
            "nested": [{"password": "hunter2", "refresh_token": "r", "token": "t", "kid": "k"}]
        }));
        let text = out.to_string();
        for secret in ["s3cret", "hunter2", "\"r\"", "\"t\""] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(out["name"], "ci");
        assert_eq!(out["token_id"], "tok_1");
        assert_eq!(out["nested"][0]["kid"], "k");
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(a < b, "{a} {b}");
    }
}
