//! Reading rows by column name, with one encoding per kind of value: a flag is an integer 0
//! or 1 (SQLite has no boolean, and the `Any` driver reads PostgreSQL's BIGINT alike); a list
//! is a JSON array of strings in a TEXT column, an object (claims by name) a JSON object.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;

/// A 0/1 column as a bool.
pub fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// A JSON list column; an unreadable list is corrupt data.
pub fn json_list(row: &AnyRow, column: &str) -> Result<Vec<String>, StoreError> {
    let raw: String = row.try_get(column)?;
    serde_json::from_str(&raw).map_err(|_| StoreError::Corrupt(format!("list in column {column}")))
}

/// A list as its column holds it.
pub fn to_json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("a list serialises")
}

/// A JSON object column (claims by name); an unreadable object is corrupt data.
pub fn json_object(
    row: &AnyRow,
    column: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    let raw: String = row.try_get(column)?;
    serde_json::from_str(&raw)
        .map_err(|_| StoreError::Corrupt(format!("object in column {column}")))
}

/// An object as its column holds it.
pub fn to_json_object(map: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(map).expect("an object serialises")
}
