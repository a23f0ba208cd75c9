//! Rate limits on `/token`, `/authorize` and `/userinfo`: token buckets (the `governor`
//! crate, GCRA) per client IP and per client_id, answering 429 with `Retry-After`.
//!
//! Limits are per instance: they exist to blunt floods and credential stuffing, and the
//! defaults sit far above the throughput targets so they never shape normal load.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

/// Token-bucket limits on `/token`, `/authorize` and `/userinfo`, per client and per IP.
/// The defaults are far above what one legitimate client or address needs, and above the
/// benchmark targets, so that they only stop floods.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests per second per client IP address, and the burst above it.
    pub per_ip_per_sec: u32,
    pub per_ip_burst: u32,
    /// Requests per second per client_id, and the burst above it.
    pub per_client_per_sec: u32,
    pub per_client_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip_per_sec: 20_000,
            per_ip_burst: 40_000,
            per_client_per_sec: 20_000,
            per_client_burst: 40_000,
        }
    }
}

pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    /// Changes to a user's own accounts (`/account` connect, disconnect, confirm), per user:
    /// a fixed, small quota ([`ACCOUNT_CHANGES_PER_MINUTE`]), since no person makes more.
    per_account: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

/// How many account changes (each its own sign-in round trip) one user may start per minute,
/// after a burst of twice that.
pub const ACCOUNT_CHANGES_PER_MINUTE: u32 = 10;

fn quota(per_sec: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
    Quota::per_second(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Arc<Self> {
        let per_account = settings.enabled.then(|| {
            let rate = NonZeroU32::new(ACCOUNT_CHANGES_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(2 * ACCOUNT_CHANGES_PER_MINUTE).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        let (per_ip, per_client) = if settings.enabled {
            (
                Some(RateLimiter::keyed(quota(
                    settings.per_ip_per_sec,
                    settings.per_ip_burst,
                ))),
                Some(RateLimiter::keyed(quota(
                    settings.per_client_per_sec,
                    settings.per_client_burst,
                ))),
            )
        } else {
            (None, None)
        };
        Arc::new(Self {
            per_ip,
            per_client,
            per_account,
            clock: DefaultClock::default(),
        })
    }

    /// `Some(429 response)` when `ip` is over its limit.
    pub fn check_ip(&self, ip: Option<IpAddr>) -> Option<HttpResponse> {
        let (limiter, ip) = (self.per_ip.as_ref()?, ip?);
        limiter
            .check_key(&ip)
            .err()
            .map(|not_until| too_many(not_until.wait_time_from(self.clock.now())))
    }

    /// `Some(429 response)` when `client_id` is over its limit.
    pub fn check_client(&self, client_id: &str) -> Option<HttpResponse> {
        self.check_named(self.per_client.as_ref(), client_id)
    }

    /// `Some(429 response)` when `key` is over `limiter`'s limit.
    fn check_named(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<String>>,
        key: &str,
    ) -> Option<HttpResponse> {
        limiter?
            .check_key(&key.to_owned())
            .err()
            .map(|not_until| too_many(not_until.wait_time_from(self.clock.now())))
    }

    /// `Some(429 response)` when `user_id` started too many account changes.
    pub fn check_account(&self, user_id: &str) -> Option<HttpResponse> {
        self.check_named(self.per_account.as_ref(), user_id)
    }

    /// Forgets idle keys so that the maps do not grow without bound.
    pub fn shrink(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        for l in [&self.per_client, &self.per_account].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Runs `shrink` every minute until the task is aborted.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let limits = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(60));
            interval.tick().await;
            loop {
                interval.tick().await;
                limits.shrink();
            }
        })
    }
}

/// One bucket for the whole instance, whoever asks: `[admin] sign_in_per_sec` and
/// `sign_in_burst` in front of admin sign-in, so that a flood from many addresses costs
/// neither database work nor argon2 memory and CPU beyond the limit.
pub struct Gate {
    limiter: governor::DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl Gate {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Self {
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(seconds to wait)` when the instance is over its rate.
    pub fn admit(&self) -> Result<(), u64> {
        self.limiter
            .check()
            .map_err(|not_until| ceil_secs(not_until.wait_time_from(self.clock.now())))
    }
}

/// Whole seconds to wait, rounded up, at least one (what `Retry-After` says).
fn ceil_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn too_many(wait: Duration) -> HttpResponse {
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, ceil_secs(wait).to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "too many requests; retry later",
        }))
}
