//! The `[webhooks]` section of the settings, and endpoints declared in `[[webhooks.endpoints]]`.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::events::EventType;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Lifts the SSRF guard (private, loopback, link-local… targets) and the https rule.
    /// For development and tests only; a warning is logged at start.
    pub allow_private_targets: bool,
    /// Whether this instance runs dispatcher workers (several instances may share a database).
    pub dispatcher: bool,
    /// The delay before each retry; the first attempt is immediate, so there are
    /// `1 + retry_schedule.len()` attempts in all.
    pub retry_schedule: Vec<HumanDuration>,
    /// Each retry delay is moved by up to this fraction, either way, so retries spread out.
    pub retry_jitter: f64,
    /// Each attempt (connect, send, response head and the first KB of body) must finish in this.
    pub attempt_timeout: HumanDuration,
    /// How long a claimed delivery stays reserved for its worker; after that, another worker may
    /// take it (the worker died). Must exceed `attempt_timeout`.
    pub lease: HumanDuration,
    /// How often an idle worker looks for due deliveries.
    pub poll_interval: HumanDuration,
    /// Attempts in flight at once per instance.
    pub concurrency: usize,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: HumanDuration,
    /// An endpoint whose every attempt failed for this long is disabled (and audited).
    pub disable_after: HumanDuration,
    /// After a secret rotation, the old secret also signs for this long.
    pub secret_overlap: HumanDuration,
    /// Endpoints kept in config: upserted at start, read-only elsewhere.
    pub endpoints: Vec<ManagedEndpoint>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let d = |s: &str| HumanDuration::parse(s).expect("valid default duration");
        Self {
            allow_private_targets: false,
            dispatcher: true,
            retry_schedule: ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]
                .into_iter()
                .map(d)
                .collect(),
            retry_jitter: 0.2,
            attempt_timeout: d("15s"),
            lease: d("60s"),
            poll_interval: d("50ms"),
            concurrency: 64,
            max_retry_after: d("10h"),
            disable_after: d("5d"),
            secret_overlap: d("24h"),
            endpoints: Vec::new(),
        }
    }
}

impl WebhookSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.lease.0 <= self.attempt_timeout.0 {
            return Err("webhooks.lease must be longer than webhooks.attempt_timeout".into());
        }
        if self.attempt_timeout.0.is_zero() {
            return Err("webhooks.attempt_timeout must be positive".into());
        }
        if self.poll_interval.0.is_zero() {
            return Err("webhooks.poll_interval must be positive".into());
        }
        if self.concurrency == 0 {
            return Err("webhooks.concurrency must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.retry_jitter) {
            return Err("webhooks.retry_jitter must be in [0, 1)".into());
        }
        let mut ids = std::collections::HashSet::new();
        for endpoint in &self.endpoints {
            endpoint.validate()?;
            if !ids.insert(endpoint.id.as_str()) {
                return Err(format!(
                    "webhooks.endpoints: the id `{}` is used twice",
                    endpoint.id
                ));
            }
        }
        Ok(())
    }

    /// Attempts a delivery gets in one round.
    pub fn max_attempts(&self) -> i64 {
        1 + self.retry_schedule.len() as i64
    }
}

/// An endpoint declared in `portico.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedEndpoint {
    /// A stable slug naming the endpoint (its id).
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub description: String,
    /// `whsec_…`; unset means Portico generates one (rotate it to learn it).
    #[serde(
        default,
        deserialize_with = "crate::crypto::secret_serde::optional",
        serialize_with = "crate::crypto::secret_serde::redacted"
    )]
    pub secret: Option<SecretString>,
}

fn yes() -> bool {
    true
}

impl ManagedEndpoint {
    fn validate(&self) -> Result<(), String> {
        let ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "webhooks.endpoints: id `{}` must be 1-64 of a-z, 0-9, - and _",
                self.id
            ));
        }
        for event in &self.events {
            if EventType::parse(event).is_none() {
                return Err(format!(
                    "webhooks.endpoints `{}`: unknown event type `{event}`",
                    self.id
                ));
            }
        }
        Ok(())
    }
}

/// A duration written as `250ms`, `5s`, `5m`, `2h` or `5d` (a bare number means seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (digits, unit) = raw.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{raw}` is not a duration such as 500ms, 5s, 5m, 2h or 1d"))?;
        let millis = match unit.trim() {
            "ms" => Some(n),
            "" | "s" => n.checked_mul(1_000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => None,
        }
        .ok_or_else(|| format!("`{raw}` is not a duration such as 500ms, 5s, 5m, 2h or 1d"))?;
        Ok(Self(Duration::from_millis(millis)))
    }

    pub fn as_millis(&self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ];
        for (size, unit) in units {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Self(Duration::from_secs(n))),
            Raw::Text(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        for (raw, ms) in [
            ("250ms", 250),
            ("5s", 5_000),
            ("5", 5_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
        ] {
            let d = HumanDuration::parse(raw).unwrap();
            assert_eq!(d.as_millis(), ms, "{raw}");
            assert_eq!(HumanDuration::parse(&d.to_string()).unwrap(), d);
        }
        for bad in ["", "5x", "s", "-1s", "1.5s"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_schedule_is_the_documented_one() {
        let s = WebhookSettings::default();
        let schedule: Vec<String> = s.retry_schedule.iter().map(|d| d.to_string()).collect();
        assert_eq!(schedule, ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]);
        assert_eq!(s.max_attempts(), 8);
        assert!(s.validate().is_ok());
    }
}
