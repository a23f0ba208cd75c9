//! Times as the admin faces show them; the store keeps Unix seconds.

use chrono::{DateTime, NaiveDateTime, SecondsFormat};

/// RFC 3339 in UTC, as the JSON API returns times.
pub fn rfc3339(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2026-11-28 16:04:05 UTC`, as every admin page shows times.
pub fn display(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// A span in words, in its largest whole unit up to hours: `24 hours`, `5 minutes`, `90 seconds`
/// (`1d` would be terse on a page that explains what happens).
pub fn span(span: std::time::Duration) -> String {
    let secs = span.as_secs();
    let (n, unit) = match secs {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// An RFC 3339 time (as the API views carry them) as pages show times; anything else as it is.
pub fn display_rfc3339(raw: &str) -> String {
    DateTime::parse_from_rfc3339(raw).map_or_else(|_| raw.to_owned(), |t| display(t.timestamp()))
}

/// Unix seconds, RFC 3339, a form's `datetime-local` value, or a time as the pages show it
/// (`2026-11-28 16:04:05 UTC`, seconds and ` UTC` optional); all but RFC 3339 read as UTC.
pub fn parse(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let raw = raw.strip_suffix("UTC").map_or(raw, str::trim_end);
    if let Ok(secs) = raw.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.timestamp());
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|fmt| NaiveDateTime::parse_from_str(raw, fmt).ok())
    .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse("1700000000"), Some(1_700_000_000));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse("2023-11-14T22:13"), Some(1_700_000_000 - 20));
        assert_eq!(parse("2023-11-14 22:13:20 UTC"), Some(1_700_000_000));
        assert_eq!(parse(&display(1_700_000_000)), Some(1_700_000_000));
        assert_eq!(parse("2023-11-14 22:13"), Some(1_700_000_000 - 20));
        assert_eq!(parse("yesterday"), None);
        assert_eq!(
            display_rfc3339(&rfc3339(1_700_000_000)),
            display(1_700_000_000)
        );
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn spans_read_as_words() {
        let s = std::time::Duration::from_secs;
        assert_eq!(span(s(86_400)), "24 hours");
        assert_eq!(span(s(3600)), "1 hour");
        assert_eq!(span(s(300)), "5 minutes");
        assert_eq!(span(s(90)), "90 seconds");
    }
}
