//! Dispatcher workers: claim due deliveries under a lease, send them signed, log each attempt.
//!
//! Any number of instances may run one against the same database: a delivery is claimed by
//! exactly one worker at a time (see `deliveries::claim`), and a worker that dies leaves a lease
//! that runs out, after which another worker claims the delivery again. The attempt that died is
//! counted; the receiver sees the same `webhook-id` again and can deduplicate.
//!
//! A worker that is stopped (SIGTERM) stops claiming and lets its attempts finish within the
//! shutdown grace; the ones still running then are cut off and their leases given back, so
//! another instance takes them over at once rather than when the leases would have run out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::WebhookSettings;
use super::deliveries::{
    self, AttemptRecord, Finished, Job, Next, finish_attempts, settle_without_attempt,
};
use super::endpoints;
use super::events::EventType;
use super::guard::{self, GuardedResolver};
use super::retry::{parse_retry_after, retry_delay};
use super::signing::{WebhookSecret, signature_header};
use crate::crypto::Sealer;
use crate::net::error_chain;
use crate::store::sealed::{self, SealedColumn};
use crate::store::{self, Store};

/// Bytes of each response body kept in the log.
const RESPONSE_KEEP: usize = 1024;
/// How often a worker refreshes the queue gauges.
const STATS_EVERY: Duration = Duration::from_secs(5);

pub struct Dispatcher {
    store: Store,
    sealer: Sealer,
    settings: Arc<WebhookSettings>,
    client: reqwest::Client,
}

/// A running dispatcher. `shutdown` stops claiming and lets attempts in flight finish;
/// `shutdown_within` does so within a grace period, giving back the leases of attempts cut
/// off; dropping the handle aborts it at once (what a crash does: its leases run out).
pub struct DispatcherHandle {
    stop: watch::Sender<Run>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What the worker is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Claim,
    /// Stop claiming; attempts in flight may run until the instant, if any.
    StopBy(Option<tokio::time::Instant>),
}

impl DispatcherHandle {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(Run::StopBy(None));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops within `grace`: attempts in flight get most of it to finish and be logged; those
    /// still running then are cut off and their deliveries given back (due at once, for any
    /// worker). Whatever is left when `grace` is over (a database that does not answer) is
    /// abandoned: its leases run out.
    pub async fn shutdown_within(mut self, grace: Duration) {
        let started = tokio::time::Instant::now();
        // Room to log what finished and give the rest back.
        let margin = (grace / 2).min(Duration::from_secs(1));
        let _ = self.stop.send(Run::StopBy(Some(started + grace - margin)));
        if let Some(task) = self.task.take()
            && tokio::time::timeout_at(started + grace, task)
                .await
                .is_err()
        {
            tracing::warn!(
                "the webhook dispatcher did not stop within the grace period; its leases run out \
                 after webhooks.lease"
            );
        }
    }
}

impl Drop for DispatcherHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Dispatcher {
    pub fn new(
        store: Store,
        sealer: Sealer,
        settings: Arc<WebhookSettings>,
    ) -> anyhow::Result<Self> {
        let timeout = settings.attempt_timeout.0;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .no_proxy()
            .pool_max_idle_per_host(settings.concurrency)
            .user_agent(concat!("Portico-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_targets {
            builder = builder
                .https_only(true)
                .dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            store,
            sealer,
            settings,
            client: builder.build()?,
        })
    }

    pub fn spawn(self) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(Run::Claim);
        let task = tokio::spawn(Arc::new(self).run(stopped));
        DispatcherHandle {
            stop,
            task: Some(task),
        }
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<Run>) {
        let mut in_flight = JoinSet::new();
        let cut_off = CutOff::default();
        // Attempts end in a channel; one writer logs them in batches (see `finish_attempts`).
        let (done, results) = mpsc::unbounded_channel();
        let mut writer = JoinSet::new();
        writer.spawn(Arc::clone(&self).write(results));
        // A slot is held from claim until the attempt is written, so a slow database slows
        // claiming instead of letting written-late attempts outlive their leases.
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut stats_at = Instant::now() - STATS_EVERY;
        while *stop.borrow() == Run::Claim {
            while in_flight.try_join_next().is_some() {}
            let free = slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self
                    .claim(&slots, free, &mut in_flight, &done, &cut_off)
                    .await
                {
                    Ok(n) => claimed = n,
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            if stats_at.elapsed() >= STATS_EVERY {
                stats_at = Instant::now();
                self.report_queue().await;
            }
            if free > 0 && claimed == free {
                continue; // a full batch: more may be due
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval.0), if free > 0 => {}
                _ = slots.acquire(), if free == 0 => {}
                _ = stop.changed() => {}
            }
        }
        // Stopping: attempts in flight end within the attempt timeout, or by the deadline if
        // there is one, and are written.
        let all_ended = async { while in_flight.join_next().await.is_some() {} };
        let deadline = match *stop.borrow() {
            Run::StopBy(at) => at,
            Run::Claim => None,
        };
        let ended = match deadline {
            None => {
                all_ended.await;
                true
            }
            Some(at) => tokio::time::timeout_at(at, all_ended).await.is_ok(),
        };
        if !ended {
            in_flight.abort_all();
            while in_flight.join_next().await.is_some() {}
        }
        drop(done);
        while writer.join_next().await.is_some() {}
        // Only now, with every finished attempt written: what was cut off goes back.
        let cut = cut_off.take();
        if !cut.is_empty() {
            match deliveries::release(&self.store, &cut, store::now_ms()).await {
                Ok(released) => tracing::info!(
                    released,
                    "webhook attempts cut off by the shutdown: their deliveries are due again at once"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    cut_off = cut.len(),
                    "could not give back the leases of webhook attempts cut off by the shutdown; \
                     they run out after webhooks.lease"
                ),
            }
        }
    }

    async fn claim(
        self: &Arc<Self>,
        slots: &Arc<Semaphore>,
        free: usize,
        in_flight: &mut JoinSet<()>,
        done: &mpsc::UnboundedSender<Done>,
        cut_off: &CutOff,
    ) -> Result<usize, crate::store::StoreError> {
        let now = store::now_ms();
        if !deliveries::any_due(&self.store, now).await? {
            return Ok(0);
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease_until = now + self.settings.lease.as_millis();
        let jobs = deliveries::claim(&self.store, &token, now, lease_until, free as i64).await?;
        let claimed = jobs.len();
        let token: Arc<str> = token.into();
        for job in jobs {
            let me = Arc::clone(self);
            let token = Arc::clone(&token);
            let done = done.clone();
            let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
                break; // cannot happen: at most `free` were claimed
            };
            let mut lease = cut_off.hold(job.delivery_id, &token);
            in_flight.spawn(async move {
                let delivery = job.delivery_id;
                let attempted = me.attempt(job, token).await;
                lease.settled();
                match attempted {
                    Ok(Some(mut result)) => {
                        result.slot = Some(slot);
                        let _ = done.send(result);
                    }
                    Ok(None) => {}
                    // The lease runs out and another attempt follows.
                    Err(e) => {
                        tracing::warn!(delivery, error = %e, "settling a webhook delivery failed")
                    }
                }
            });
        }
        Ok(claimed)
    }

    /// Writes finished attempts in batches, then applies what they mean for their endpoints.
    async fn write(self: Arc<Self>, mut results: mpsc::UnboundedReceiver<Done>) {
        let mut batch = Vec::new();
        while results.recv_many(&mut batch, 256).await > 0 {
            let mut slots = Vec::with_capacity(batch.len());
            let (finished, outcomes): (Vec<Finished>, Vec<Outcome>) = batch
                .drain(..)
                .map(|d| {
                    slots.push(d.slot);
                    (d.finished, d.outcome)
                })
                .unzip();
            let lost = match finish_attempts(&self.store, &finished).await {
                Ok(lost) => lost,
                // One bad row (say, its endpoint was just deleted) must not hold back the rest:
                // write them one by one.
                Err(_) if finished.len() > 1 => {
                    let mut lost = 0;
                    for f in &finished {
                        match finish_attempts(&self.store, std::slice::from_ref(f)).await {
                            Ok(n) => lost += n,
                            Err(e) => {
                                lost += 1;
                                tracing::warn!(delivery = f.job.delivery_id, error = %e, "recording a webhook attempt failed");
                            }
                        }
                    }
                    lost
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recording a webhook attempt failed");
                    1
                }
            };
            if lost > 0 {
                // A lost lease means another worker took the delivery over; an unrecorded
                // attempt keeps its lease until it runs out, then goes again.
                tracing::info!(lost, "some webhook attempts did not settle their delivery");
            }
            drop(slots);
            for (f, outcome) in finished.iter().zip(outcomes) {
                if let Err(e) = self.settle(f, outcome).await {
                    tracing::warn!(delivery = f.job.delivery_id, error = %e, "updating a webhook endpoint failed");
                }
            }
        }
    }

    async fn report_queue(&self) {
        match deliveries::queue_stats(&self.store).await {
            Ok((depth, oldest)) => {
                metrics::gauge!("webhook_queue_depth").set(depth as f64);
                let age = oldest.map_or(0.0, |t| (store::now_ms() - t).max(0) as f64 / 1000.0);
                metrics::gauge!("webhook_oldest_pending_age_seconds").set(age);
            }
            Err(e) => tracing::warn!(error = %e, "reading the webhook queue failed"),
        }
    }

    /// The secrets that sign now: the current one, and the previous one during its overlap.
    fn secrets(&self, job: &Job, now_ms: i64) -> Result<Vec<WebhookSecret>, String> {
        let open = |sealed: &[u8], column: SealedColumn| {
            let text = self
                .sealer
                .open_string(sealed, column.target(&job.endpoint_id))
                .map_err(|e| format!("cannot open the endpoint secret: {e}"))?;
            WebhookSecret::parse(text.expose_secret()).map_err(|e| e.to_string())
        };
        let endpoint = &job.endpoint;
        let mut secrets = vec![open(&endpoint.secret, sealed::WEBHOOK_SECRET)?];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_secret, endpoint.previous_secret_until_ms)
            && until > now_ms
        {
            secrets.push(open(previous, sealed::WEBHOOK_PREVIOUS_SECRET)?);
        }
        Ok(secrets)
    }

    /// Makes one attempt; `None` when the delivery was settled without one.
    #[tracing::instrument(skip_all, fields(delivery = job.delivery_id, endpoint = %job.endpoint_id, attempt = job.attempt))]
    async fn attempt(
        &self,
        job: Job,
        token: Arc<str>,
    ) -> Result<Option<Done>, crate::store::StoreError> {
        let now = store::now_ms();
        if !job.endpoint.enabled && job.event_type != EventType::WebhookTest.as_str() {
            settle_without_attempt(&self.store, &job, &token, "the endpoint is disabled").await?;
            metrics::counter!("webhook_deliveries_total", "outcome" => "failed").increment(1);
            return Ok(None);
        }
        let prepared = self.secrets(&job, now).and_then(|secrets| {
            guard::check_url(&job.endpoint.url, self.settings.allow_private_targets)
                .map(|url| (secrets, url))
                .map_err(|e| e.to_string())
        });
        let started = Instant::now();
        let (record, outcome) = match prepared {
            Ok((secrets, url)) => self.send(&job, &secrets, url, now).await,
            Err(error) => (
                AttemptRecord::unanswered(now, Some(error)),
                Outcome::Refused,
            ),
        };
        metrics::histogram!("webhook_attempt_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("webhook_attempts_total", "result" => outcome.label()).increment(1);

        let next = match &outcome {
            Outcome::Success => Next::Succeeded,
            Outcome::Gone => Next::Failed,
            other => match retry_delay(&self.settings, job.attempt) {
                None => Next::Failed,
                Some(delay) => {
                    let wait = match other {
                        Outcome::Throttled(Some(after)) => {
                            delay.max((*after).min(self.settings.max_retry_after.0))
                        }
                        _ => delay,
                    };
                    Next::RetryAt(store::now_ms() + wait.as_millis() as i64)
                }
            },
        };
        Ok(Some(Done {
            finished: Finished {
                job,
                token,
                record,
                next,
                gone: matches!(outcome, Outcome::Gone),
            },
            outcome,
            slot: None,
        }))
    }

    /// After an attempt is logged: metrics, and the endpoint's health (410 Gone, or failing for
    /// too long, disables it).
    async fn settle(&self, f: &Finished, outcome: Outcome) -> Result<(), crate::store::StoreError> {
        let job = &f.job;
        match f.next {
            Next::Succeeded => {
                metrics::counter!("webhook_deliveries_total", "outcome" => "succeeded")
                    .increment(1);
                metrics::histogram!("webhook_delivery_latency_seconds")
                    .record((store::now_ms() - job.created_at_ms).max(0) as f64 / 1000.0);
            }
            Next::Failed => {
                metrics::counter!("webhook_deliveries_total", "outcome" => "failed").increment(1);
                tracing::warn!(delivery = job.delivery_id, endpoint = %job.endpoint_id, error = ?f.record.error, status = ?f.record.status_code, "webhook delivery failed for good");
            }
            Next::RetryAt(_) => {}
        }
        // A 410 already disabled the endpoint along with the attempt (`finish_attempts`).
        if !f.gone
            && job.event_type != EventType::WebhookTest.as_str()
            && endpoints::note_health(
                &self.store,
                &job.endpoint_id,
                job.endpoint.failing_since_ms,
                matches!(outcome, Outcome::Success),
                f.record.started_at_ms,
                self.settings.disable_after.as_millis(),
            )
            .await?
        {
            tracing::warn!(endpoint = %job.endpoint_id, "webhook endpoint disabled: every attempt failed for too long");
        }
        Ok(())
    }

    /// One HTTP attempt.
    async fn send(
        &self,
        job: &Job,
        secrets: &[WebhookSecret],
        url: url::Url,
        now_ms: i64,
    ) -> (AttemptRecord, Outcome) {
        let timestamp = now_ms / 1000;
        let body = job.body.as_bytes();
        let signature = signature_header(secrets, &job.event_id, timestamp, body);
        let started = Instant::now();
        let sent = self
            .client
            .post(url)
            .header("webhook-id", &job.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(job.body.clone())
            .send()
            .await;
        let mut record = AttemptRecord::unanswered(now_ms, None);
        let outcome = match sent {
            Ok(mut response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
                let mut kept = Vec::new();
                while kept.len() < RESPONSE_KEEP {
                    match response.chunk().await {
                        Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                        Ok(None) => break,
                        Err(e) => {
                            record.error =
                                Some(format!("reading the response: {}", error_chain(&e)));
                            break;
                        }
                    }
                }
                kept.truncate(RESPONSE_KEEP);
                record.status_code = Some(status.as_u16());
                record.response_body =
                    (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned());
                match status.as_u16() {
                    200..=299 => Outcome::Success,
                    410 => Outcome::Gone,
                    429 | 503 => Outcome::Throttled(retry_after),
                    code => {
                        record.error.get_or_insert_with(|| format!("HTTP {code}"));
                        Outcome::HttpError
                    }
                }
            }
            Err(e) if e.is_timeout() => {
                record.error = Some(format!("timed out after {}", self.settings.attempt_timeout));
                Outcome::Timeout
            }
            Err(e) => {
                record.error = Some(error_chain(&e));
                if guard::refused(&e) {
                    Outcome::Refused
                } else {
                    Outcome::NetworkError
                }
            }
        };
        record.latency_ms = started.elapsed().as_millis() as i64;
        (record, outcome)
    }
}

/// The leases of attempts that were cut off (aborted) before they ended: a stopping worker
/// gives them back.
#[derive(Default)]
struct CutOff(Leases);

/// Deliveries and the lease tokens they were claimed under.
type Leases = Arc<Mutex<Vec<(i64, Arc<str>)>>>;

impl CutOff {
    fn hold(&self, delivery_id: i64, token: &Arc<str>) -> HeldLease {
        HeldLease {
            lease: Some((delivery_id, Arc::clone(token))),
            cut_off: Arc::clone(&self.0),
        }
    }

    fn take(&self) -> Vec<(i64, Arc<str>)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A lease an attempt holds; dropped before `settled` (the attempt was aborted), it is recorded
/// as cut off.
struct HeldLease {
    lease: Option<(i64, Arc<str>)>,
    cut_off: Leases,
}

impl HeldLease {
    /// The attempt ended: its outcome settles the delivery (or its lease runs out).
    fn settled(&mut self) {
        self.lease = None;
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.cut_off
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(lease);
        }
    }
}

/// A finished attempt on its way to the writer.
struct Done {
    finished: Finished,
    outcome: Outcome,
    /// Released once the attempt is written.
    slot: Option<OwnedSemaphorePermit>,
}

#[derive(Debug)]
enum Outcome {
    Success,
    Gone,
    Throttled(Option<Duration>),
    HttpError,
    Timeout,
    NetworkError,
    /// The SSRF guard or the endpoint's configuration stopped the attempt before any request.
    Refused,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Gone => "gone",
            Outcome::Throttled(_) => "throttled",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::NetworkError => "network_error",
            Outcome::Refused => "refused",
        }
    }
}
