//! Keyset pagination: the one way every list pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Where the previous page of a newest-first list ended: the sort key (time, id) of its last
/// row. Every paginated list (admin API and pages) continues below one, so pages stay stable
/// while rows are added. Encoded, it is the opaque `cursor` clients pass back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub at: i64,
    pub id: String,
}

impl Keyset {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.at, self.id))
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (at, id) = text.split_once('.')?;
        Some(Self {
            at: at.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// Conditions with bound values, for lists that filter on what a caller typed (users, audit):
/// `int` and `text` number the placeholders in order, each bound once (SQLite and PostgreSQL
/// differ on reusing one).
#[derive(Default)]
pub struct Conditions {
    sql: Vec<String>,
    binds: Vec<Bind>,
}

enum Bind {
    Int(i64),
    Text(String),
}

impl Conditions {
    /// The placeholder that binds `value`.
    pub fn int(&mut self, value: i64) -> String {
        self.binds.push(Bind::Int(value));
        format!("${}", self.binds.len())
    }

    /// The placeholder that binds `value`.
    pub fn text(&mut self, value: impl Into<String>) -> String {
        self.binds.push(Bind::Text(value.into()));
        format!("${}", self.binds.len())
    }

    /// A condition every row must meet, its placeholders from `int` and `text`.
    pub fn push(&mut self, condition: String) {
        self.sql.push(condition);
    }
}

/// A newest-first list on `(time_col, id_col)`: `select` is `SELECT … FROM table`, `filter` an
/// optional condition every row meets (no placeholders); [`NewestFirst::fetch_where`] adds
/// bound ones.
pub struct NewestFirst<'a> {
    pub select: &'a str,
    pub filter: Option<&'a str>,
    pub time_col: &'a str,
    pub id_col: &'a str,
}

impl<'a> NewestFirst<'a> {
    /// The rows of `select`, newest first by `created_at`, then `id_col`.
    pub fn by_created(select: &'a str, id_col: &'a str) -> Self {
        Self {
            select,
            filter: None,
            time_col: "created_at",
            id_col,
        }
    }

    /// Up to `limit` rows below `before` (all rows from the newest when `None`).
    /// `on` is a pool (`store.pool()`) or the caller's connection or transaction.
    pub async fn fetch<'c>(
        &self,
        on: impl sqlx::Executor<'c, Database = sqlx::Any>,
        before: Option<&Keyset>,
        limit: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, super::StoreError> {
        self.fetch_where(on, Conditions::default(), before, limit)
            .await
    }

    /// As [`NewestFirst::fetch`], of the rows that also meet `conditions`.
    pub async fn fetch_where<'c>(
        &self,
        on: impl sqlx::Executor<'c, Database = sqlx::Any>,
        mut conditions: Conditions,
        before: Option<&Keyset>,
        limit: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, super::StoreError> {
        let (time, id) = (self.time_col, self.id_col);
        if let Some(f) = self.filter {
            conditions.push(format!("({f})"));
        }
        if let Some(key) = before {
            // Sorts after the key: older, or as old with a smaller id.
            let (at, same, below) = (
                conditions.int(key.at),
                conditions.int(key.at),
                conditions.text(key.id.clone()),
            );
            conditions.push(format!(
                "({time} < {at} OR ({time} = {same} AND {id} < {below}))"
            ));
        }
        let filter = if conditions.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.sql.join(" AND "))
        };
        let sql = format!(
            "{} {filter} ORDER BY {time} DESC, {id} DESC LIMIT {}",
            self.select,
            limit.max(0)
        );
        let mut query = sqlx::query(&sql);
        for bind in conditions.binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        Ok(query.fetch_all(on).await?)
    }
}
