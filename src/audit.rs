//! The audit log: who changed what, when and from where.
//!
//! `record` takes the connection of the transaction that makes the change, so an entry exists
//! exactly when its change committed; `commit_with` is the last step of every admin change.
//! Details are JSON with anything secret-looking redacted. This module owns `audit_log`; the
//! admin UI and API read it through [`list`].

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::crypto::{hex, random_bytes};
use crate::store::{self, Keyset, Store, StoreError};

const REDACTED: &str = "[redacted]";

/// Who makes a change, as the audit log records it: the signed-in admin or API token behind a
/// request, the CLI or the bootstrap, and the address it came from.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `admin:<email>`, `api_token:<name> (<id>)`, `cli` or `bootstrap`.
    pub actor: String,
    pub ip: Option<String>,
}

impl Caller {
    pub fn cli() -> Self {
        Self {
            actor: "cli".into(),
            ip: None,
        }
    }

    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }
}

/// Every action the code records, for the audit page's type filter (docs/admin.md describes
/// each). A test checks that every action string in `src/` is listed here.
pub const ACTIONS: &[&str] = &[
    "admin.created",
    "admin.signed_in",
    "admin.sign_in_failed",
    "admin.sign_in_refused",
    "api_token.created",
    "api_token.revoked",
    "broker.upgrade_issued",
    "broker.upgrade_refused",
    "client.created",
    "client.updated",
    "client.secret_rotated",
    "client.deleted",
    "identity.linked",
    "identity.link_refused",
    "identity.moved",
    "identity.scopes_granted",
    "identity.unlinked",
    "keys.rotated",
    "provider.created",
    "provider.updated",
    "provider.deleted",
    "provider.disabled",
    "user.disabled",
    "user.enabled",
    "user.sessions_ended",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.secret_rotated",
    "webhook.test_sent",
    "webhook.delivery_replayed",
    "webhook.deliveries_replayed",
    "webhook.endpoint_disabled",
];

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
    mut tx: crate::store::WriteTx,
    caller: &Caller,
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
    format!("aud_{micros:016x}{}", hex(&random))
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

/// One stored entry.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: Value,
    pub ip: Option<String>,
}

impl AuditRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let details: String = row.try_get("details")?;
        Ok(Self {
            id: row.try_get("id")?,
            created_at: row.try_get("created_at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row
                .try_get::<Option<String>, _>("target")?
                .unwrap_or_default(),
            details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
            ip: row.try_get("ip")?,
        })
    }
}

/// Which entries to list; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// Entries about (`user:<id>` target) or by this Portico user.
    pub user_id: Option<String>,
    pub actor: Option<String>,
    /// At or after (Unix seconds).
    pub from: Option<i64>,
    /// Before (Unix seconds).
    pub to: Option<i64>,
}

/// Up to `limit` entries matching `filter`, newest first, below `before` when given.
pub async fn list(
    store: &Store,
    filter: &AuditFilter,
    before: Option<&Keyset>,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut c = store::Conditions::default();
    if let Some(action) = &filter.action {
        let p = c.text(action);
        c.push(format!("action = {p}"));
    }
    if let Some(user) = &filter.user_id {
        let (t, a) = (
            c.text(format!("user:{user}")),
            c.text(format!("user:{user}")),
        );
        c.push(format!("(target = {t} OR actor = {a})"));
    }
    if let Some(actor) = &filter.actor {
        let p = c.text(actor);
        c.push(format!("actor = {p}"));
    }
    if let Some(from) = filter.from {
        let p = c.int(from);
        c.push(format!("created_at >= {p}"));
    }
    if let Some(to) = filter.to {
        let p = c.int(to);
        c.push(format!("created_at < {p}"));
    }
    let select = "SELECT id, created_at, actor, action, target, details, ip FROM audit_log";
    let list = store::NewestFirst::by_created(select, "id");
    let rows = list.fetch_where(store.pool(), c, before, limit).await?;
    Ok(rows
        .iter()
        .map(AuditRecord::from_row)
        .collect::<Result<Vec<_>, _>>()?)
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

    /// Every string literal in `src/` shaped like an action (`<area>.<word>` for an area that
    /// has actions) is in `ACTIONS`, and every listed action is recorded somewhere. Settings
    /// keys (config.rs), event types (webhooks/events.rs) and file names are not actions.
    #[test]
    fn every_recorded_action_is_listed() {
        let areas: std::collections::BTreeSet<&str> = ACTIONS
            .iter()
            .map(|a| a.split_once('.').expect("area.word").0)
            .collect();
        let not_actions = ["admin.css"];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = std::collections::BTreeMap::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let skip = [
                    root.join("config.rs"),
                    root.join("audit.rs"),
                    root.join("webhooks").join("events.rs"),
                ];
                if path.extension().is_none_or(|e| e != "rs") || skip.contains(&path) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Each pair of neighbouring quotes, whatever the escapes between others.
                let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i).collect();
                for pair in quotes.windows(2) {
                    let literal = &text[pair[0] + 1..pair[1]];
                    let Some((area, word)) = literal.split_once('.') else {
                        continue;
                    };
                    let is_word = |w: &str| {
                        !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    };
                    if areas.contains(area) && is_word(word) && !not_actions.contains(&literal) {
                        found.insert(literal.to_owned(), path.display().to_string());
                    }
                }
            }
        }
        for (action, file) in &found {
            assert!(
                ACTIONS.contains(&action.as_str()),
                "{action} ({file}) is not in ACTIONS"
            );
        }
        for action in ACTIONS {
            assert!(
                found.contains_key(*action),
                "{action} is listed but never recorded"
            );
        }
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(a < b, "{a} {b}");
    }
}
