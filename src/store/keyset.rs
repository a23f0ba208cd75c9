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

    /// The SQL condition "sorts after this key" on `(time_col, id_col)` in newest-first order,
    /// with the placeholders `$n`, `$n+1`, `$n+2`; bind `at`, `at` and `id` in that order (each
    /// placeholder is bound once: SQLite and PostgreSQL differ on reusing one).
    pub fn below(time_col: &str, id_col: &str, n: usize) -> String {
        format!(
            "({time_col} < ${n} OR ({time_col} = ${} AND {id_col} < ${}))",
            n + 1,
            n + 2
        )
    }
}

/// A newest-first list on `(time_col, id_col)`: `select` is `SELECT … FROM table`, `filter` an
/// optional condition every row meets (no placeholders). Lists with bound search terms (users,
/// audit) build their own query around [`Keyset::below`].
pub struct NewestFirst<'a> {
    pub select: &'a str,
    pub filter: Option<&'a str>,
    pub time_col: &'a str,
    pub id_col: &'a str,
}

impl NewestFirst<'_> {
    /// Up to `limit` rows below `before` (all rows from the newest when `None`).
    /// `on` is a pool (`store.pool()`) or the caller's connection or transaction.
    pub async fn fetch<'c>(
        &self,
        on: impl sqlx::Executor<'c, Database = sqlx::Any>,
        before: Option<&Keyset>,
        limit: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, super::StoreError> {
        let (time, id) = (self.time_col, self.id_col);
        let mut conditions: Vec<String> =
            self.filter.map(|f| format!("({f})")).into_iter().collect();
        if before.is_some() {
            conditions.push(Keyset::below(time, id, 1));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "{} {filter} ORDER BY {time} DESC, {id} DESC LIMIT {}",
            self.select,
            limit.max(0)
        );
        let mut query = sqlx::query(&sql);
        if let Some(key) = before {
            query = query.bind(key.at).bind(key.at).bind(key.id.clone());
        }
        Ok(query.fetch_all(on).await?)
    }
}
