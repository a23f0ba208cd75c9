//! Bulkheads and circuit breakers, one of each per provider, so that an upstream that is slow,
//! hangs or fails cannot take logins through the other providers down with it.
//!
//! - The bulkhead bounds the requests in flight to one provider. When it is full, a request is
//!   refused at once ([`Rejected::Busy`]) rather than queued: a queue in front of a provider
//!   that hangs only grows, and every request in it holds a user's browser and a connection.
//! - The breaker counts consecutive failed requests (transport failures, timeouts, 5xx, 429).
//!   After `failures` of them in a row it opens: requests are refused at once
//!   ([`Rejected::Open`]) for the cool-down. The first request after it is a probe (half-open;
//!   others are refused meanwhile): its success closes the breaker, its failure opens it again.
//!   A probe that ends without an outcome (its caller went away) lets the next request probe.
//!
//! Chosen over retries alone: the outbound client already retries idempotent requests a little
//! (`super::http`), but retries only multiply the load on a provider that is down, while the
//! breaker stops sending to it, answers users at once, and notices its recovery with one probe.
//!
//! State is per process (another instance learns on its own), kept by provider id, so a
//! connector rebuilt after an edit keeps its breaker. Transitions are logged; the state, the
//! requests in flight and the refusals are metrics labelled by provider id (ids are
//! admin-configured, so the label set stays bounded).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits every provider's guard applies.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Requests in flight to one provider; more are refused.
    pub max_concurrent: usize,
    /// Consecutive failures that open the breaker; 0 never opens it.
    pub breaker_failures: u32,
    /// How long an open breaker refuses requests before a probe may go through.
    pub breaker_cooldown: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            max_concurrent: 32,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// The breaker's state, as metrics and callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    HalfOpen,
    Open,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::HalfOpen => "half_open",
            CircuitState::Open => "open",
        }
    }

    /// The value of `portico_upstream_circuit_state`.
    fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("{max} requests to provider `{provider}` are already in progress")]
    Busy { provider: String, max: usize },
    #[error(
        "provider `{provider}` failed repeatedly; requests to it are held back for {retry_in_secs} s"
    )]
    Open {
        provider: String,
        retry_in_secs: u64,
    },
}

#[derive(Debug)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The guards of every provider this process has called.
#[derive(Debug, Default)]
pub struct Guards {
    settings: GuardSettings,
    by_provider: Mutex<HashMap<String, Arc<ProviderGuard>>>,
}

impl Guards {
    pub fn new(settings: GuardSettings) -> Self {
        Self {
            settings,
            by_provider: Mutex::default(),
        }
    }

    /// The guard of `provider`, created on first use.
    pub fn of(&self, provider: &str) -> Arc<ProviderGuard> {
        let mut map = self.by_provider.lock().expect("guard table");
        map.entry(provider.to_owned())
            .or_insert_with(|| Arc::new(ProviderGuard::new(provider, self.settings.clone())))
            .clone()
    }

    /// The breaker state of `provider`: closed for one never called.
    pub fn state(&self, provider: &str) -> CircuitState {
        let guard = self
            .by_provider
            .lock()
            .expect("guard table")
            .get(provider)
            .cloned();
        guard.map_or(CircuitState::Closed, |g| g.state())
    }

    /// The refusal a request to `provider` would meet now because its breaker is open, without
    /// taking a place or a probe: for steps that need no request of their own but lead the
    /// user to the provider (the start of a login).
    pub fn open_refusal(&self, provider: &str) -> Option<Rejected> {
        let guard = self
            .by_provider
            .lock()
            .expect("guard table")
            .get(provider)
            .cloned()?;
        let left = match &*guard.phase.lock().expect("breaker") {
            Phase::Open { until } => until.checked_duration_since(Instant::now())?,
            _ => return None,
        };
        Some(guard.refuse_open(left))
    }
}

/// One provider's bulkhead and breaker.
#[derive(Debug)]
pub struct ProviderGuard {
    provider: String,
    settings: GuardSettings,
    permits: Arc<Semaphore>,
    phase: Mutex<Phase>,
}

impl ProviderGuard {
    fn new(provider: &str, settings: GuardSettings) -> Self {
        let guard = Self {
            provider: provider.to_owned(),
            permits: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            settings,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
        };
        guard.publish(CircuitState::Closed);
        metrics::gauge!("portico_upstream_in_flight", "provider" => guard.provider.clone())
            .set(0.0);
        guard
    }

    /// The state now; an open breaker whose cool-down is over reads as half-open (it becomes
    /// so at the next request).
    pub fn state(&self) -> CircuitState {
        match &*self.phase.lock().expect("breaker") {
            Phase::Closed { .. } => CircuitState::Closed,
            Phase::Open { until } if Instant::now() < *until => CircuitState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Lets a request through, or says at once why not.
    pub fn admit(self: &Arc<Self>) -> Result<Admission, Rejected> {
        let probe = {
            let mut phase = self.phase.lock().expect("breaker");
            match &*phase {
                Phase::Closed { .. } => false,
                Phase::Open { until } => {
                    let now = Instant::now();
                    if now < *until {
                        let left = until.duration_since(now);
                        return Err(self.refuse_open(left));
                    }
                    *phase = Phase::HalfOpen { probing: true };
                    self.transition(CircuitState::HalfOpen, "cool-down over; probing");
                    true
                }
                Phase::HalfOpen { probing: true } => {
                    return Err(self.refuse_open(Duration::ZERO));
                }
                Phase::HalfOpen { probing: false } => {
                    *phase = Phase::HalfOpen { probing: true };
                    true
                }
            }
        };
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!("portico_upstream_in_flight", "provider" => self.provider.clone())
                    .increment(1.0);
                Ok(Admission {
                    guard: self.clone(),
                    _permit: permit,
                    probe,
                    settled: false,
                })
            }
            Err(_) => {
                if probe {
                    self.end_probe();
                }
                self.count_rejection("busy");
                Err(Rejected::Busy {
                    provider: self.provider.clone(),
                    max: self.settings.max_concurrent.max(1),
                })
            }
        }
    }

    /// Whether the breaker is open now (a request in progress stops retrying then).
    pub fn is_open(&self) -> bool {
        self.state() == CircuitState::Open
    }

    fn refuse_open(&self, left: Duration) -> Rejected {
        self.count_rejection("circuit_open");
        Rejected::Open {
            provider: self.provider.clone(),
            retry_in_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        }
    }

    fn count_rejection(&self, reason: &'static str) {
        metrics::counter!(
            "portico_upstream_rejected_total",
            "provider" => self.provider.clone(),
            "reason" => reason
        )
        .increment(1);
    }

    fn record(&self, healthy: bool, probe: bool) {
        let outcome = if healthy { "ok" } else { "failed" };
        metrics::counter!(
            "portico_upstream_requests_total",
            "provider" => self.provider.clone(),
            "outcome" => outcome
        )
        .increment(1);
        let mut phase = self.phase.lock().expect("breaker");
        let threshold = self.settings.breaker_failures;
        match (&mut *phase, healthy) {
            (Phase::Closed { failures }, true) => *failures = 0,
            (Phase::Closed { failures }, false) => {
                *failures += 1;
                if threshold > 0 && *failures >= threshold {
                    let reason = format!("{threshold} consecutive failed requests");
                    *phase = self.open();
                    self.transition(CircuitState::Open, &reason);
                }
            }
            (Phase::HalfOpen { .. }, true) if probe => {
                *phase = Phase::Closed { failures: 0 };
                self.transition(CircuitState::Closed, "the probe succeeded");
            }
            (Phase::HalfOpen { .. }, false) if probe => {
                *phase = self.open();
                self.transition(CircuitState::Open, "the probe failed");
            }
            // A request admitted before the breaker opened, ending after: the state stands.
            _ => {}
        }
    }

    fn open(&self) -> Phase {
        Phase::Open {
            until: Instant::now() + self.settings.breaker_cooldown,
        }
    }

    /// A probe ended without an outcome: the next request may probe.
    fn end_probe(&self) {
        let mut phase = self.phase.lock().expect("breaker");
        if let Phase::HalfOpen { probing } = &mut *phase {
            *probing = false;
        }
    }

    fn transition(&self, to: CircuitState, reason: &str) {
        let provider = self.provider.as_str();
        let cooldown_secs = self.settings.breaker_cooldown.as_secs_f64();
        match to {
            CircuitState::Open => tracing::warn!(
                provider,
                reason,
                cooldown_secs,
                "upstream circuit opened: requests to the provider are refused until the cool-down ends"
            ),
            CircuitState::HalfOpen => {
                tracing::info!(provider, reason, "upstream circuit half-open")
            }
            CircuitState::Closed => tracing::info!(provider, reason, "upstream circuit closed"),
        }
        metrics::counter!(
            "portico_upstream_circuit_transitions_total",
            "provider" => self.provider.clone(),
            "to" => to.as_str()
        )
        .increment(1);
        self.publish(to);
    }

    fn publish(&self, state: CircuitState) {
        metrics::gauge!("portico_upstream_circuit_state", "provider" => self.provider.clone())
            .set(state.gauge());
    }
}

/// A request let through: holds its place in the bulkhead until dropped, and reports its
/// outcome to the breaker with [`Admission::settle`].
#[derive(Debug)]
pub struct Admission {
    guard: Arc<ProviderGuard>,
    _permit: OwnedSemaphorePermit,
    probe: bool,
    settled: bool,
}

impl Admission {
    /// Reports the request's outcome: `healthy` unless it failed in transport, timed out or
    /// was answered 5xx or 429.
    pub fn settle(mut self, healthy: bool) {
        self.settled = true;
        self.guard.record(healthy, self.probe);
    }

    /// Whether the breaker opened meanwhile (a retry would be refused anyway).
    pub fn circuit_opened(&self) -> bool {
        self.guard.is_open()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.guard.end_probe();
        }
        metrics::gauge!("portico_upstream_in_flight", "provider" => self.guard.provider.clone())
            .decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guards(max: usize, failures: u32, cooldown_ms: u64) -> Guards {
        Guards::new(GuardSettings {
            max_concurrent: max,
            breaker_failures: failures,
            breaker_cooldown: Duration::from_millis(cooldown_ms),
        })
    }

    #[test]
    fn a_full_bulkhead_refuses_at_once_and_frees_its_places() {
        let guards = guards(2, 0, 1000);
        let g = guards.of("a");
        let first = g.admit().unwrap();
        let _second = g.admit().unwrap();
        assert_eq!(
            g.admit().unwrap_err(),
            Rejected::Busy {
                provider: "a".into(),
                max: 2
            }
        );
        // Another provider has its own places.
        assert!(guards.of("b").admit().is_ok());
        drop(first);
        assert!(g.admit().is_ok());
    }

    #[test]
    fn consecutive_failures_open_the_breaker_and_a_success_resets_the_count() {
        let guards = guards(8, 3, 60_000);
        let g = guards.of("a");
        for healthy in [false, false, true, false, false] {
            g.admit().unwrap().settle(healthy);
        }
        assert_eq!(guards.state("a"), CircuitState::Closed);
        g.admit().unwrap().settle(false);
        assert_eq!(guards.state("a"), CircuitState::Open);
        match g.admit().unwrap_err() {
            Rejected::Open { retry_in_secs, .. } => assert_eq!(retry_in_secs, 60),
            other => panic!("{other:?}"),
        }
        assert_eq!(guards.state("b"), CircuitState::Closed);
    }

    #[test]
    fn after_the_cool_down_one_probe_decides() {
        let guards = guards(8, 1, 30);
        let g = guards.of("a");
        g.admit().unwrap().settle(false);
        assert_eq!(g.state(), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(g.state(), CircuitState::HalfOpen);
        let probe = g.admit().unwrap();
        // While the probe is out, others are refused.
        assert!(matches!(g.admit(), Err(Rejected::Open { .. })));
        probe.settle(false);
        assert_eq!(
            g.state(),
            CircuitState::Open,
            "a failed probe opens it again"
        );
        std::thread::sleep(Duration::from_millis(40));
        g.admit().unwrap().settle(true);
        assert_eq!(g.state(), CircuitState::Closed);
        assert!(g.admit().is_ok());
    }

    #[test]
    fn a_probe_dropped_without_an_outcome_lets_the_next_request_probe() {
        let guards = guards(8, 1, 10);
        let g = guards.of("a");
        g.admit().unwrap().settle(false);
        std::thread::sleep(Duration::from_millis(20));
        drop(g.admit().unwrap());
        let probe = g.admit().expect("the next request probes");
        probe.settle(true);
        assert_eq!(g.state(), CircuitState::Closed);
    }

    #[test]
    fn zero_failures_never_opens() {
        let guards = guards(8, 0, 10);
        let g = guards.of("a");
        for _ in 0..50 {
            g.admit().unwrap().settle(false);
        }
        assert_eq!(g.state(), CircuitState::Closed);
    }
}
