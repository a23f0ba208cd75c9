//! An upstream provider that hangs or fails must not take logins through the others down:
//! each provider has a bulkhead (requests in flight, refused at once beyond it), every request
//! has connect, read and total timeouts, and a breaker stops calling a provider that keeps
//! failing until a probe finds it back. The user gets a clear page; its way back tells the
//! application `temporarily_unavailable`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico::crypto::MasterKey;
use portico::upstream::ProviderId;
use portico::upstream::guard::CircuitState;

use crate::helpers::{TestApp, TestDb, spawn_app_with};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::standins::stall::{Stall, StallingUpstream};
use crate::upstream_idp::Upstream;

on_both_backends!(
    a_hanging_provider_does_not_slow_logins_through_another,
    a_hanging_provider_ends_at_the_timeout_with_a_clear_page,
    a_failing_provider_trips_its_breaker_and_recovers,
);

/// A provider id no other test in this process uses (metrics are process-wide).
fn unique_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Portico with the providers `(id, issuer)`.
async fn spawn_with_providers(
    db: &TestDb,
    providers: &[(&str, &str)],
    customize: impl FnOnce(&mut portico::config::Settings),
) -> TestApp {
    let providers = providers
        .iter()
        .map(|(id, issuer)| provider(id, issuer, false))
        .collect();
    spawn_app_with(db, MasterKey::generate(), move |s| {
        s.providers = providers;
        s.clients = clients();
        customize(s);
    })
    .await
}

/// Two providers that hang, one each way (never answering; headers, then a stalled body), and
/// one that works; with ids no other test uses.
struct Three {
    silent: StallingUpstream,
    stalled: StallingUpstream,
    good: Upstream,
    silent_id: String,
    stalled_id: String,
    good_id: String,
}

impl Three {
    async fn start() -> Self {
        Self {
            silent: StallingUpstream::start(Stall::Silent).await,
            stalled: StallingUpstream::start(Stall::AfterHeaders).await,
            good: Upstream::start().await,
            silent_id: unique_id("silent"),
            stalled_id: unique_id("stalled"),
            good_id: unique_id("good"),
        }
    }

    /// Portico with the three as providers.
    async fn spawn(
        &self,
        db: &TestDb,
        customize: impl FnOnce(&mut portico::config::Settings),
    ) -> TestApp {
        let providers = [
            (&*self.silent_id, &*self.silent.issuer),
            (&self.stalled_id, &self.stalled.issuer),
            (&self.good_id, &self.good.issuer),
        ];
        spawn_with_providers(db, &providers, customize).await
    }
}

/// A browser of its own (cookies), as each user has.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// One login at `provider` in a fresh browser, up to the client's redirect URI or a page;
/// with the `state` the client sent.
async fn login(app: &TestApp, rp: &Rp, provider: &str) -> (Arrival, String) {
    let (url, csrf, _, _) = start(rp, &[], &[("provider", provider), ("prompt", "login")]);
    let arrival = browse_with(&browser(), app, url.as_str(), REDIRECT).await;
    (arrival, csrf.secret().clone())
}

/// A login that must succeed; returns how long it took.
async fn timed_good_login(app: &TestApp, rp: &Rp, provider: &str) -> Duration {
    let started = Instant::now();
    let (arrival, state) = login(app, rp, provider).await;
    let elapsed = started.elapsed();
    let arrived = arrival.url();
    assert!(param(&arrived, "code").is_some(), "{arrived}");
    assert_eq!(param(&arrived, "state").as_deref(), Some(state.as_str()));
    elapsed
}

/// The "provider unavailable" page: status 502, the message, and a way back carrying
/// `temporarily_unavailable` and the client's `state`.
fn assert_unavailable_page(arrival: Arrival, state: &str) {
    let (status, body) = arrival.page();
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("Sign-in provider unavailable"), "{body}");
    let (_, back) = Arrival::Page(status, body).failure();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    assert_eq!(param(&back, "state").as_deref(), Some(state));
    assert!(param(&back, "code").is_none());
}

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / samples.len() as u32
}

async fn a_hanging_provider_does_not_slow_logins_through_another(db: &TestDb) {
    const PLACES: usize = 3;
    const STUCK_LOGINS: usize = 8;
    const GOOD_LOGINS: usize = 12;
    let three = Three::start().await;
    let (silent, stalled) = (&three.silent, &three.stalled);
    let (silent_id, stalled_id, good_id) = (&three.silent_id, &three.stalled_id, &three.good_id);
    let app = Arc::new(
        three
            .spawn(db, |s| {
                s.upstream.max_concurrent_per_provider = PLACES;
                // Long enough that the stuck requests outlast the whole measurement.
                s.upstream.request_timeout_ms = 60_000;
                s.upstream.read_timeout_ms = 60_000;
            })
            .await,
    );
    let rp = Arc::new(relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await);

    // The good provider's normal pace, once its discovery document is cached.
    timed_good_login(&app, &rp, good_id).await;
    let mut before = Vec::new();
    for _ in 0..GOOD_LOGINS {
        before.push(timed_good_login(&app, &rp, good_id).await);
    }

    // Users pile onto the hung providers: PLACES of them wait on each, the rest are told at once.
    let stuck: Vec<_> = [silent_id, stalled_id]
        .into_iter()
        .flat_map(|id| std::iter::repeat_n(id.clone(), STUCK_LOGINS))
        .map(|id| {
            let (app, rp) = (app.clone(), rp.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let (arrival, state) = login(&app, &rp, &id).await;
                (arrival, state, started.elapsed())
            })
        })
        .collect();
    silent.wait_for(PLACES, Duration::from_secs(30)).await;
    stalled.wait_for(PLACES, Duration::from_secs(30)).await;
    let refusals = 2 * (STUCK_LOGINS - PLACES);
    let waiting = Instant::now();
    while stuck.iter().filter(|t| t.is_finished()).count() < refusals {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "the logins beyond the bulkheads were not refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (refused, stuck): (Vec<_>, Vec<_>) = stuck.into_iter().partition(|t| t.is_finished());
    for task in refused {
        let (arrival, state, elapsed) = task.await.unwrap();
        assert_unavailable_page(arrival, &state);
        assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    }

    // Meanwhile the good provider's logins all succeed, at their normal pace.
    let mut during = Vec::new();
    for _ in 0..GOOD_LOGINS {
        during.push(timed_good_login(&app, &rp, good_id).await);
    }
    let (mean_before, mean_during) = (mean(&before), mean(&during));
    let worst = *during.iter().max().unwrap();
    eprintln!(
        "good logins: mean {mean_before:?} before, {mean_during:?} with {} stuck at two hung \
         providers (worst {worst:?})",
        stuck.len()
    );
    assert!(
        // Loose for a loaded machine; stuck behind the hung ones it would take a minute.
        mean_during < mean_before * 4 + Duration::from_secs(1),
        "{mean_during:?} against {mean_before:?}"
    );
    assert!(worst < Duration::from_secs(10), "{worst:?}");
    // The stuck ones were stuck all along, and nothing else reached the hung providers.
    assert_eq!(stuck.len(), 2 * PLACES);
    assert!(stuck.iter().all(|t| !t.is_finished()));
    assert_eq!((silent.accepted(), stalled.accepted()), (PLACES, PLACES));
    for task in stuck {
        task.abort();
    }
    let failed = events(&app, "login.failed").await;
    assert_eq!(failed.len(), refusals, "{failed:?}");
    for event in &failed {
        assert!(
            event["provider"] == silent_id.as_str() || event["provider"] == stalled_id.as_str(),
            "{event}"
        );
        let reason = event["reason"].as_str().unwrap();
        assert!(reason.contains("already in progress"), "{reason}");
    }
    app.stop();
}

async fn a_hanging_provider_ends_at_the_timeout_with_a_clear_page(db: &TestDb) {
    let three = Three::start().await;
    let (silent, stalled) = (&three.silent, &three.stalled);
    let (silent_id, stalled_id, good_id) = (&three.silent_id, &three.stalled_id, &three.good_id);
    let app = three
        .spawn(db, |s| {
            s.upstream.max_concurrent_per_provider = 1;
            s.upstream.request_timeout_ms = 3_000;
            s.upstream.read_timeout_ms = 400;
        })
        .await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    for (hung, id) in [(&silent, &silent_id), (&stalled, &stalled_id)] {
        for attempt in 1..=2 {
            let started = Instant::now();
            let (arrival, state) = login(&app, &rp, id).await;
            let elapsed = started.elapsed();
            assert_unavailable_page(arrival, &state);
            // The read timeout ends it, well before the request timeout; not retried.
            assert!(
                elapsed >= Duration::from_millis(350) && elapsed < Duration::from_millis(2_900),
                "{id}: {elapsed:?}"
            );
            // Its place in the bulkhead (one) was given back: the next login got through.
            assert_eq!(hung.accepted(), attempt, "{id}");
            let reason = last_failure(&app).await;
            assert!(reason.contains("unreachable"), "{id}: {reason}");
            assert!(reason.contains("timed out"), "{id}: {reason}");
        }
    }
    timed_good_login(&app, &rp, good_id).await;
    app.stop();
}

/// The reason of the latest `login.failed`.
async fn last_failure(app: &TestApp) -> String {
    let failed = events(app, "login.failed").await;
    let last = failed.last().expect("a login.failed event");
    last["reason"].as_str().unwrap().to_owned()
}

/// The lines of `/metrics` about `provider`.
async fn provider_metrics(app: &TestApp, provider: &str) -> Vec<String> {
    let text = app.get("/metrics").await.text().await.unwrap();
    let label = format!("provider=\"{provider}\"");
    text.lines()
        .filter(|l| l.contains(&label))
        .map(str::to_owned)
        .collect()
}

async fn metric(app: &TestApp, provider: &str, name_and_labels: &str) -> Option<f64> {
    provider_metrics(app, provider)
        .await
        .iter()
        .find(|l| l.starts_with(name_and_labels) && l.contains(&format!("\"{provider}\"")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn wait_for_state(app: &TestApp, provider: &ProviderId, want: CircuitState) {
    let started = Instant::now();
    while app.state.connectors.http().circuit(provider) != want {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the breaker never became {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_failing_provider_trips_its_breaker_and_recovers(db: &TestDb) {
    const FAILURES: u32 = 3;
    let flaky = Upstream::start().await;
    let good = Upstream::start().await;
    let (flaky_id, good_id) = (unique_id("flaky"), unique_id("good"));
    let providers = [(&*flaky_id, &*flaky.issuer), (&good_id, &good.issuer)];
    let app = spawn_with_providers(db, &providers, |s| {
        s.upstream.breaker_failures = FAILURES;
        s.upstream.breaker_cooldown_ms = 1_000;
    })
    .await;
    let rp = relying_party(&app, CLIENT_ID, Some(CLIENT_SECRET), REDIRECT).await;
    let id = ProviderId::parse(&flaky_id).unwrap();

    // Healthy: its discovery document is read and kept.
    timed_good_login(&app, &rp, &flaky_id).await;
    assert_eq!(
        metric(&app, &flaky_id, "portico_upstream_circuit_state").await,
        Some(0.0)
    );

    // Its token endpoint starts answering 503: each login fails, and the third opens the breaker.
    flaky.set_failing(true);
    for _ in 0..FAILURES {
        let (arrival, state) = login(&app, &rp, &flaky_id).await;
        assert_unavailable_page(arrival, &state);
    }
    assert_eq!(app.state.connectors.http().circuit(&id), CircuitState::Open);
    let reason = last_failure(&app).await;
    assert!(reason.contains("answered 503"), "{reason}");

    // Open: the next user is told at once, before being sent to the provider; no request.
    let calls = flaky.back_channel_calls();
    let started = Instant::now();
    let (arrival, state) = login(&app, &rp, &flaky_id).await;
    assert_unavailable_page(arrival, &state);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(flaky.back_channel_calls(), calls);
    let reason = last_failure(&app).await;
    assert!(reason.contains("held back"), "{reason}");
    assert_eq!(
        metric(&app, &flaky_id, "portico_upstream_circuit_state").await,
        Some(2.0)
    );
    // The other provider is not affected.
    timed_good_login(&app, &rp, &good_id).await;
    assert_eq!(
        app.state
            .connectors
            .http()
            .circuit(&ProviderId::parse(&good_id).unwrap()),
        CircuitState::Closed
    );

    // After the cool-down, a probe goes through; the provider still fails, so it opens again.
    wait_for_state(&app, &id, CircuitState::HalfOpen).await;
    let (arrival, state) = login(&app, &rp, &flaky_id).await;
    assert_unavailable_page(arrival, &state);
    assert_eq!(flaky.back_channel_calls(), calls + 1, "one probe");
    assert_eq!(app.state.connectors.http().circuit(&id), CircuitState::Open);

    // The provider recovers: after the next cool-down the probe succeeds and closes it.
    flaky.set_failing(false);
    wait_for_state(&app, &id, CircuitState::HalfOpen).await;
    timed_good_login(&app, &rp, &flaky_id).await;
    assert_eq!(
        app.state.connectors.http().circuit(&id),
        CircuitState::Closed
    );
    timed_good_login(&app, &rp, &flaky_id).await;

    let lines = provider_metrics(&app, &flaky_id).await;
    let value = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(
        value("portico_upstream_circuit_state"),
        Some(0.0),
        "{lines:?}"
    );
    let transitions = |to: &str| {
        lines
            .iter()
            .find(|l| {
                l.starts_with("portico_upstream_circuit_transitions_total")
                    && l.contains(&format!("to=\"{to}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(transitions("open"), Some(2.0), "{lines:?}");
    assert_eq!(transitions("half_open"), Some(2.0), "{lines:?}");
    assert_eq!(transitions("closed"), Some(1.0), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("portico_upstream_rejected_total")
                && l.contains("reason=\"circuit_open\"")),
        "{lines:?}"
    );
    app.stop();
}
