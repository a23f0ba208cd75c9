//! GitHub's rate-limit answers, turned into an error that says when to try again.
//!
//! GitHub signals a spent primary limit with 403 or 429 and `x-ratelimit-remaining: 0` (the
//! reset time in `x-ratelimit-reset`, unix seconds), and a secondary limit with 403/429 and
//! `Retry-After`. GET retries within a short wait are `UpstreamHttp`'s; what still arrives
//! here is a limit that outlasts them, so the login fails with a clear error instead.

use reqwest::{Response, StatusCode};

use crate::upstream::UpstreamError;

/// `Some(error)` when `response` is a rate-limit answer.
pub(super) fn limited(response: &Response, what: &str) -> Option<UpstreamError> {
    let status = response.status();
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let spent = header("x-ratelimit-remaining") == Some("0");
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    if !spent && retry_after.is_none() {
        return None;
    }
    let when = match (retry_after, header("x-ratelimit-reset")) {
        (Some(secs), _) => format!("retry after {secs} s"),
        (None, Some(reset)) => match reset.parse::<i64>() {
            Ok(at) => {
                let wait = (at - crate::store::now()).max(0);
                let at = chrono::DateTime::from_timestamp(at, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| at.to_string());
                format!("the limit resets at {at} (in {wait} s)")
            }
            Err(_) => "the reset time is unknown".to_owned(),
        },
        (None, None) => "the reset time is unknown".to_owned(),
    };
    let which = header("x-ratelimit-resource")
        .filter(|r| r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Some(UpstreamError::Unavailable(format!(
        "GitHub rate limit exceeded{which} at {what} ({status}); {when}"
    )))
}
