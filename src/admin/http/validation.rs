//! Field errors shared by forms (shown next to the field) and the API (a 422 body).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// `Ok(value)` when no error was added.
    pub fn or_ok<T>(self, value: T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// A query parameter's value, trimmed; `None` when absent or blank (filters of the lists).
pub fn non_empty(raw: &Option<String>) -> Option<String> {
    raw.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A short human label: trimmed, 1 to `max` characters, no control characters.
pub fn label(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) -> String {
    if raw.trim().is_empty() {
        errors.add(field, "is required");
    }
    text(errors, field, raw, max)
}

/// Free text, maybe empty: trimmed, at most `max` characters, no control characters.
pub fn text(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) -> String {
    let value = raw.trim();
    if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    } else if value.chars().any(char::is_control) {
        errors.add(field, "must not contain control characters");
    }
    value.to_owned()
}

/// A redirect URI a client may register, by the one policy of
/// `clients::RedirectUri::register` (http://localhost only for a `development` client); an
/// error is the field's.
pub fn redirect_uri(
    errors: &mut FieldErrors,
    field: &str,
    raw: &str,
    development: bool,
) -> Option<crate::clients::RedirectUri> {
    crate::clients::RedirectUri::register(raw.trim(), development)
        .map_err(|e| errors.add(field, e.to_string()))
        .ok()
}
