//! When the next attempt happens: the schedule with jitter, and the receiver's `Retry-After`.

use std::time::Duration;

use super::WebhookSettings;
use crate::crypto::random_bytes;

/// The delay before the retry that follows failed attempt number `attempt` (1-based), or
/// `None` when that was the last attempt.
pub fn retry_delay(settings: &WebhookSettings, attempt: i64) -> Option<Duration> {
    let index = usize::try_from(attempt - 1).ok()?;
    let base = settings.retry_schedule.get(index)?.0;
    Some(jitter(base, settings.retry_jitter))
}

/// Moves `base` by a uniformly random fraction in `[-spread, +spread]`.
fn jitter(base: Duration, spread: f64) -> Duration {
    if spread <= 0.0 || base.is_zero() {
        return base;
    }
    let mut bytes = [0u8; 8];
    random_bytes(&mut bytes);
    let unit = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    base.mul_f64(1.0 + spread * (2.0 * unit - 1.0))
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::HumanDuration;

    #[test]
    fn the_schedule_ends_after_its_last_entry() {
        let mut s = WebhookSettings {
            retry_jitter: 0.0,
            ..WebhookSettings::default()
        };
        assert_eq!(retry_delay(&s, 1), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(&s, 7), Some(Duration::from_secs(36_000)));
        assert_eq!(retry_delay(&s, 8), None);
        s.retry_schedule = vec![HumanDuration::parse("10ms").unwrap()];
        assert_eq!(retry_delay(&s, 1), Some(Duration::from_millis(10)));
        assert_eq!(retry_delay(&s, 2), None);
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let base = Duration::from_secs(100);
        for _ in 0..200 {
            let d = jitter(base, 0.2);
            assert!(
                d >= Duration::from_secs(80) && d <= Duration::from_secs(120),
                "{d:?}"
            );
        }
        assert_eq!(jitter(Duration::ZERO, 0.2), Duration::ZERO);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
