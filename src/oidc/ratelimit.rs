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

use super::settings::RateLimitSettings;

pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
    Quota::per_second(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Arc<Self> {
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
        let limiter = self.per_client.as_ref()?;
        limiter
            .check_key(&client_id.to_owned())
            .err()
            .map(|not_until| too_many(not_until.wait_time_from(self.clock.now())))
    }

    /// Forgets idle keys so that the maps do not grow without bound.
    pub fn shrink(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_client {
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

fn too_many(wait: Duration) -> HttpResponse {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, secs.max(1).to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "too many requests; retry later",
        }))
}

/// The client address of a request, as `ops::client_ip` resolved it (the TCP peer, or behind a
/// trusted proxy the address it forwarded).
pub fn peer_ip(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    crate::ops::client_ip::client_ip(req)
}
