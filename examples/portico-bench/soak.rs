//! The soak (`--workload mixed`): logins, refreshes and userinfo calls in a 1:3:6 mix for a
//! long time, sampled every `--every` seconds into a CSV row: throughput, errors, p99 per kind,
//! the RSS of each server process named by `--pid`, and webhook deliveries received.
//!
//! It answers "does it stay flat?", so it reports per interval rather than one total.
//! With `--backend` the driver also plays the load balancer: it listens at the issuer's
//! address and hands each new TCP connection to the next backend in turn, so several
//! instances on one database share the load as they would behind a real one. Each login is a
//! new browser on a new connection, so one user's login, refreshes and userinfo calls may
//! meet different instances. With `--webhook-listen` it receives the servers' webhooks and at
//! the end checks that every successful login's `login.succeeded` event arrived.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::net::{TcpListener, TcpStream};

use crate::Args;
use crate::browser::{Browser, Shared};
use crate::chart::{Panel, panels_svg};

/// What a connection does next, by its step number within a cycle of ten.
#[derive(Clone, Copy)]
enum Kind {
    Login,
    Refresh,
    Userinfo,
}

const KINDS: [Kind; 3] = [Kind::Login, Kind::Refresh, Kind::Userinfo];

fn kind_of(step: u64) -> Kind {
    match step % 10 {
        0 => Kind::Login,
        1 | 4 | 7 => Kind::Refresh,
        _ => Kind::Userinfo,
    }
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Refresh => "refresh",
            Kind::Userinfo => "userinfo",
        }
    }
}

/// What the connections measured since the last sample.
struct Interval {
    latency: [Histogram<u64>; 3],
}

impl Interval {
    fn new() -> Self {
        let h = || Histogram::new(3).expect("histogram");
        Self {
            latency: [h(), h(), h()],
        }
    }
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    errors: AtomicU64,
    logins: AtomicU64,
}

struct Stats {
    interval: Mutex<Interval>,
    counters: Counters,
    first_error: Mutex<Option<String>>,
}

impl Stats {
    fn done(&self, kind: Kind, took: Duration) {
        self.counters.ok.fetch_add(1, Ordering::Relaxed);
        let mut interval = self.interval.lock().expect("stats lock");
        let _ = interval.latency[kind.index()].record(took.as_micros() as u64);
    }

    fn failed(&self, kind: Kind, message: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("stats lock");
        if first.is_none() {
            eprintln!("first failure ({}): {message}", kind.name());
            *first = Some(message);
        }
    }
}

/// A signed-in user as one connection keeps it.
struct User {
    browser: Browser,
    access: String,
    refresh: Option<String>,
}

/// A new browser (a new connection, which the balancer may give another instance) logs in.
async fn login(shared: &Arc<Shared>, stats: &Stats) -> Result<User, String> {
    let mut browser = Browser::new(shared.clone());
    let tokens = browser.login().await?;
    stats.counters.logins.fetch_add(1, Ordering::Relaxed);
    Ok(User {
        browser,
        access: tokens.access_token,
        refresh: tokens.refresh_token,
    })
}

/// One timed operation. A connection without a user (at its start, or after a failure) first
/// logs in, untimed, when the operation is not itself a login.
async fn step(
    shared: &Arc<Shared>,
    stats: &Stats,
    user: &mut Option<User>,
    kind: Kind,
) -> Result<Duration, String> {
    if matches!(kind, Kind::Login) {
        let t0 = Instant::now();
        *user = Some(login(shared, stats).await?);
        return Ok(t0.elapsed());
    }
    let u = match user {
        Some(u) => u,
        None => user.insert(login(shared, stats).await?),
    };
    let t0 = Instant::now();
    match kind {
        Kind::Refresh => {
            let token = u.refresh.take().ok_or("the login gave no refresh token")?;
            let tokens = u.browser.refresh(&token).await?;
            u.access = tokens.access_token;
            u.refresh = tokens.refresh_token;
        }
        _ => u.browser.userinfo(&u.access).await?,
    }
    Ok(t0.elapsed())
}

/// One connection's loop: paced at `interval` between sends, until `deadline`.
async fn connection(
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    first_step: u64,
    interval: Duration,
    deadline: Instant,
) {
    let mut user = None;
    let mut next = Instant::now();
    let mut n = first_step;
    while Instant::now() < deadline {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let kind = kind_of(n);
        n += 1;
        match step(&shared, &stats, &mut user, kind).await {
            Ok(took) => stats.done(kind, took),
            Err(e) => {
                // A failed refresh loses the chain: log in again at the next step.
                user = None;
                stats.failed(kind, e);
            }
        }
    }
}

/// Accepts at `listen` and splices each connection to the next backend in turn.
async fn balance(listen: SocketAddr, backends: Vec<SocketAddr>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("the balancer cannot listen at {listen}"))?;
    tokio::spawn(async move {
        let mut turn = 0usize;
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let backend = backends[turn % backends.len()];
            turn = turn.wrapping_add(1);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok(())
}

/// Webhook message ids received (Standard Webhooks' `webhook-id`), and all deliveries.
#[derive(Default)]
struct Received {
    ids: Mutex<HashSet<String>>,
    deliveries: AtomicU64,
}

async fn hook(req: HttpRequest, received: web::Data<Received>) -> HttpResponse {
    received.deliveries.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
    {
        received
            .ids
            .lock()
            .expect("receiver lock")
            .insert(id.to_owned());
    }
    HttpResponse::NoContent().finish()
}

fn receive_webhooks(listen: SocketAddr) -> anyhow::Result<web::Data<Received>> {
    let received = web::Data::new(Received::default());
    let data = received.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::post().to(hook))
    })
    .workers(1)
    .bind(listen)
    .with_context(|| format!("the webhook receiver cannot listen at {listen}"))?
    .run();
    tokio::spawn(server);
    Ok(received)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn p99_ms(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0)
}

/// Runs the soak and writes its CSV and chart.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let issuer = url::Url::parse(args.issuer.as_deref().context("--issuer")?)?;
    if !args.backend.is_empty() {
        let listen = issuer
            .socket_addrs(|| None)?
            .into_iter()
            .next()
            .context("the issuer has no address to listen at")?;
        balance(listen, args.backend.clone()).await?;
        eprintln!(
            "balancing {listen} over {}",
            args.backend
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let shared = crate::workload::Workload::prepare(args)
        .await?
        .users()
        .context("the mixed workload needs users")?;
    let received = args.webhook_listen.map(receive_webhooks).transpose()?;
    let connections = args.connections.max(1);
    let rate = args.rate.filter(|r| *r > 0.0).unwrap_or(200.0);
    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let every = Duration::from_secs(args.every.max(1));
    let duration = Duration::from_secs(args.duration.max(1));
    println!(
        "soak: {connections} connections at {rate:.0} requests/s in all for {} s, \
         logins:refreshes:userinfo 1:3:6, sampled every {} s",
        duration.as_secs(),
        every.as_secs()
    );

    let stats = Arc::new(Stats {
        interval: Mutex::new(Interval::new()),
        counters: Counters::default(),
        first_error: Mutex::new(None),
    });
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            // Connections start at different steps, so the mix holds in every interval.
            let first = i as u64 * 10 / connections as u64;
            tokio::spawn(connection(
                shared.clone(),
                stats.clone(),
                first,
                interval,
                deadline,
            ))
        })
        .collect();

    let header = format!(
        "t_s,req_per_s,errors_total,login_p99_ms,refresh_p99_ms,userinfo_p99_ms,{}webhooks_received",
        args.pid
            .iter()
            .map(|p| format!("rss_mib_{p},"))
            .collect::<String>()
    );
    println!("{header}");
    let mut csv = vec![header];
    let mut rows: Vec<Row> = Vec::new();
    let mut last_ok = 0;
    let mut tick = tokio::time::interval_at((started + every).into(), every);
    while Instant::now() < deadline {
        tick.tick().await;
        let t = started.elapsed().as_secs_f64();
        let sample = std::mem::replace(
            &mut *stats.interval.lock().expect("stats lock"),
            Interval::new(),
        );
        let ok = stats.counters.ok.load(Ordering::Relaxed);
        let errors = stats.counters.errors.load(Ordering::Relaxed);
        let rps = (ok - last_ok) as f64 / every.as_secs_f64();
        last_ok = ok;
        let rss: Vec<Option<u64>> = args
            .pid
            .iter()
            .map(|p| crate::report::rss_kib(*p))
            .collect();
        let hooks = received
            .as_ref()
            .map_or(0, |r| r.ids.lock().expect("receiver lock").len());
        let p99: Vec<Option<f64>> = sample.latency.iter().map(p99_ms).collect();
        let line = format!(
            "{t:.0},{rps:.0},{errors},{},{}{hooks}",
            p99.iter()
                .map(|p| p.map_or("-".to_owned(), |v| format!("{v:.1}")))
                .collect::<Vec<_>>()
                .join(","),
            rss.iter()
                .map(|k| format!("{},", mib(*k)))
                .collect::<String>(),
        );
        println!("{line}");
        csv.push(line);
        rows.push(Row {
            t,
            errors,
            p99,
            rss,
        });
    }
    for task in tasks {
        let _ = task.await;
    }
    let logins = stats.counters.logins.load(Ordering::Relaxed);
    let errors = stats.counters.errors.load(Ordering::Relaxed);
    let ok = stats.counters.ok.load(Ordering::Relaxed);
    println!(
        "done: {ok} requests answered, {errors} errors, {logins} logins in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(received) = &received {
        // Deliveries trail the logins by the dispatcher's poll interval: wait for them.
        let waited = Instant::now();
        let count = || received.ids.lock().expect("receiver lock").len() as u64;
        while count() < logins && waited.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let ids = count();
        println!(
            "webhooks: {ids} distinct login events received for {logins} logins ({} deliveries \
             in all); {} missing",
            received.deliveries.load(Ordering::Relaxed),
            logins.saturating_sub(ids)
        );
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, csv.join("\n") + "\n")?;
        println!("samples written to {}", path.display());
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, chart_of(&rows, &args.pid))?;
        println!("chart written to {}", path.display());
    }
    Ok(())
}

struct Row {
    t: f64,
    errors: u64,
    p99: Vec<Option<f64>>,
    rss: Vec<Option<u64>>,
}

fn chart_of(rows: &[Row], pids: &[u32]) -> String {
    let minutes = |r: &Row| r.t / 60.0;
    let rss = pids
        .iter()
        .enumerate()
        .map(|(i, pid)| {
            let points = rows
                .iter()
                .filter_map(|r| r.rss[i].map(|k| (minutes(r), k as f64 / 1024.0)))
                .collect();
            (format!("instance {} (pid {pid})", i + 1), points)
        })
        .collect();
    let p99 = KINDS
        .iter()
        .map(|k| {
            let points = rows
                .iter()
                .filter_map(|r| r.p99[k.index()].map(|v| (minutes(r), v)))
                .collect();
            (k.name().to_owned(), points)
        })
        .collect();
    let errors = vec![(
        "errors so far".to_owned(),
        rows.iter().map(|r| (minutes(r), r.errors as f64)).collect(),
    )];
    panels_svg(
        "Soak: RSS, p99 latency and errors over time",
        &[
            Panel {
                y_label: "RSS, MiB",
                series: rss,
            },
            Panel {
                y_label: "p99, ms",
                series: p99,
            },
            Panel {
                y_label: "errors",
                series: errors,
            },
        ],
    )
}
