//! Webhook delivery figures for docs/BENCHMARKS.md: throughput from one dispatcher to a fast
//! local receiver, and the time from an event's commit to its arrival at low load.
//!
//! cargo run --release --example webhook_bench -- [events] [latency_samples]
//!
//! SQLite in a temporary directory by default; set PORTICO_BENCH_DATABASE_URL to a fresh
//! PostgreSQL database to measure that instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use portico::config::DatabaseUrl;
use portico::crypto::{MasterKey, Sealer};
use portico::store::Store;
use portico::webhooks::events::{self, EventType};
use portico::webhooks::{Dispatcher, ManagedEndpoint, WebhookSettings};

#[derive(Default)]
struct Arrivals(Mutex<HashMap<String, Instant>>);

async fn hook(req: HttpRequest, arrivals: web::Data<Arrivals>) -> HttpResponse {
    if let Some(id) = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
    {
        arrivals
            .0
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_insert_with(Instant::now);
    }
    HttpResponse::NoContent().finish()
}

fn login() -> serde_json::Value {
    serde_json::json!({
        "user_id": "usr_bench", "provider": "github", "client_id": "bench", "email": "b@example.com",
        "ip": "203.0.113.1", "user_agent": "bench", "new_user": false
    })
}

async fn record(store: &Store) -> (String, Instant) {
    let mut tx = store.pool().begin().await.unwrap();
    let event = events::record(&mut tx, EventType::LoginSucceeded, login())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (event.id, Instant::now())
}

async fn wait_for(arrivals: &Arrivals, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while arrivals.0.lock().unwrap().len() < count {
        assert!(Instant::now() < deadline, "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map_or(Ok(5000), |a| a.parse())?;
    let samples: usize = args.next().map_or(Ok(200), |a| a.parse())?;

    let arrivals = web::Data::new(Arrivals::default());
    let data = arrivals.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(hook))
    })
    .workers(2)
    .bind(("127.0.0.1", 0))?;
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());

    let dir = std::env::temp_dir().join(format!("portico-bench-{}", uuid::Uuid::new_v4().simple()));
    let url = match std::env::var("PORTICO_BENCH_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => format!("sqlite://{}", dir.join("bench.db").display()),
    };
    let store = Store::connect(&DatabaseUrl::parse(&url).map_err(anyhow::Error::msg)?, 16).await?;
    store.migrate().await?;
    let sealer = Sealer::new(&MasterKey::generate());
    // The receiver is declared as in portico.toml and applied as a start applies it.
    let settings = Arc::new(WebhookSettings {
        allow_private_targets: true,
        endpoints: vec![ManagedEndpoint {
            id: "bench".into(),
            url: format!("http://127.0.0.1:{port}/hook"),
            events: vec!["login.succeeded".into()],
            enabled: true,
            description: "bench".into(),
            secret: None,
        }],
        ..WebhookSettings::default()
    });
    let declared = portico::config::Settings {
        webhooks: (*settings).clone(),
        ..Default::default()
    };
    portico::declared::apply(&store, &sealer, &declared).await?;

    // Throughput: a backlog of events, then one dispatcher drains it.
    for _ in 0..events {
        record(&store).await;
    }
    let started = Instant::now();
    let dispatcher = Dispatcher::new(store.clone(), sealer.clone(), settings.clone())?.spawn();
    wait_for(&arrivals, events, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    println!(
        "throughput: {events} deliveries in {:.2} s = {:.0}/s (backend {:?}, concurrency {})",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        store.backend(),
        settings.concurrency
    );

    // Latency at low load: one event at a time, commit to arrival.
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let (id, committed) = record(&store).await;
        wait_for(&arrivals, events + i + 1, Duration::from_secs(10)).await;
        let arrived = arrivals.0.lock().unwrap()[&id];
        latencies.push(arrived.duration_since(committed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "commit-to-delivery over {samples} events: median {:.1} ms, p95 {:.1} ms, max {:.1} ms (poll interval {})",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.95).as_secs_f64() * 1000.0,
        at(1.0).as_secs_f64() * 1000.0,
        settings.poll_interval
    );

    dispatcher.shutdown().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
