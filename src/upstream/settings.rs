//! `[upstream]`: how Portico talks to upstream providers: the timeouts of every request, its
//! retries, and each provider's bulkhead and circuit breaker ([`super::guard`]). The defaults
//! suit public providers; lower the timeouts where the providers are near.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::guard::GuardSettings;
use super::http::HttpSettings;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSettings {
    /// Establishing the connection (TCP and TLS).
    pub connect_timeout_ms: u64,
    /// One request from start to the last byte of its answer, whatever happens meanwhile.
    pub request_timeout_ms: u64,
    /// The longest silence while waiting for the answer or reading it: ends a provider that
    /// sends headers and then stalls long before the request timeout.
    pub read_timeout_ms: u64,
    /// Retries of an idempotent request (GET) after a connection failure, a 5xx or a 429; a
    /// timed-out request is not retried, nor is a POST (a code exchange) ever.
    pub retries: u32,
    /// Requests in flight to one provider; more fail at once with "provider unavailable".
    pub max_concurrent_per_provider: usize,
    /// Consecutive failed requests to a provider (transport failures, timeouts, 5xx, 429) that
    /// open its circuit breaker; 0 turns the breaker off.
    pub breaker_failures: u32,
    /// How long an open breaker refuses requests before one probe may go through.
    pub breaker_cooldown_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            request_timeout_ms: 15_000,
            read_timeout_ms: 10_000,
            retries: 2,
            max_concurrent_per_provider: 32,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
        }
    }
}

impl UpstreamSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (name, value, max) in [
            ("connect_timeout_ms", self.connect_timeout_ms, 60_000),
            ("request_timeout_ms", self.request_timeout_ms, 300_000),
            ("read_timeout_ms", self.read_timeout_ms, 300_000),
            ("breaker_cooldown_ms", self.breaker_cooldown_ms, 3_600_000),
        ] {
            if value == 0 || value > max {
                return Err(format!("upstream.{name} must be between 1 and {max}"));
            }
        }
        if self.retries > 5 {
            return Err("upstream.retries must be at most 5".into());
        }
        if self.max_concurrent_per_provider == 0 || self.max_concurrent_per_provider > 10_000 {
            return Err("upstream.max_concurrent_per_provider must be between 1 and 10000".into());
        }
        Ok(())
    }

    pub fn http(&self) -> HttpSettings {
        HttpSettings {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            timeout: Duration::from_millis(self.request_timeout_ms),
            read_timeout: Duration::from_millis(self.read_timeout_ms),
            max_retries: self.retries,
            guard: GuardSettings {
                max_concurrent: self.max_concurrent_per_provider,
                breaker_failures: self.breaker_failures,
                breaker_cooldown: Duration::from_millis(self.breaker_cooldown_ms),
            },
            ..HttpSettings::default()
        }
    }
}
