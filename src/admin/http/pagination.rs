//! `?limit=&cursor=` for every admin list. A cursor is opaque to clients: it encodes the sort
//! key (time, id) of the last item returned, so pages stay stable while rows are added.

use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::http::validation::FieldErrors;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

pub use crate::store::Keyset as Cursor;

/// A validated `limit` and `cursor`.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The first page of the largest size: what a page that shows a whole list asks for.
    pub const FIRST_LARGEST: PageRequest = PageRequest {
        limit: MAX_LIMIT,
        cursor: None,
    };

    pub fn parse(
        limit: Option<&str>,
        cursor: Option<&str>,
        errors: &mut FieldErrors,
    ) -> PageRequest {
        let limit = match limit.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.add("limit", format!("must be a number from 1 to {MAX_LIMIT}"));
                    DEFAULT_LIMIT
                }
            },
        };
        let cursor = match cursor.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => {
                let decoded = Cursor::decode(raw);
                if decoded.is_none() {
                    errors.add("cursor", "is not a cursor this API returned");
                }
                decoded
            }
        };
        PageRequest { limit, cursor }
    }

    /// The page of up to `limit + 1` rows fetched newest first: the extra row only says that
    /// more exist. `key` is a row's sort key, (time, id).
    pub fn of<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> (i64, String)) -> Page<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|row| {
                let (at, id) = key(row);
                Cursor { at, id }.encode()
            })
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// One page of a list and the cursor of the next, if there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            at: 1_700_000_000,
            id: "aud_x.y".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("!!"), None);
        let mut errors = FieldErrors::new();
        PageRequest::parse(Some("0"), Some("bm9wZQ"), &mut errors);
        assert!(errors.get("limit").is_some());
        assert!(errors.get("cursor").is_some());
    }
}
