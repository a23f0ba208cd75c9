//! A load driver for OpenID Connect providers.
//!
//! It drives a running server over HTTP with N concurrent connections for a fixed time and
//! reports throughput, p50/p90/p99 latency, errors, and the server's RSS (from /proc, when the
//! server runs on this machine and `--pid` names it). The generic workloads work against any
//! provider from its discovery URL, so Portico and another provider can be measured side by side.
//!
//!   cargo run --release --example portico-bench -- --issuer http://127.0.0.1:8080 \
//!       --workload jwks --connections 64 --duration 10
//!   cargo run --release --example portico-bench -- --issuer … --workload jwks \
//!       --sweep 1,4,16,64,256 --svg docs/bench/jwks.svg

mod chart;
mod report;
mod workload;

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::report::Report;
use crate::workload::Workload;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum WorkloadKind {
    Discovery,
    Jwks,
    ClientCredentials,
}

#[derive(Debug, Parser)]
#[command(about = "Load driver for OpenID Connect providers")]
pub struct Args {
    /// The provider's issuer; discovery is read from `{issuer}/.well-known/openid-configuration`.
    #[arg(long)]
    pub issuer: String,
    #[arg(long, value_enum)]
    pub workload: WorkloadKind,
    /// Concurrent connections (each a task with its own HTTP/1.1 connection).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds to run each measurement.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Measure at each of these concurrencies instead of `--connections` (e.g. 1,4,16,64,256).
    #[arg(long, value_delimiter = ',')]
    pub sweep: Vec<usize>,
    /// Write a throughput-against-concurrency chart of the sweep here.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// The server's process id, to report its RSS.
    #[arg(long)]
    pub pid: Option<u32>,
    #[arg(long)]
    pub client_id: Option<String>,
    #[arg(long)]
    pub client_secret: Option<String>,
    /// Scope for client_credentials.
    #[arg(long)]
    pub scope: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let workload = Workload::prepare(&args).await?;
    let levels = if args.sweep.is_empty() {
        vec![args.connections]
    } else {
        args.sweep.clone()
    };
    println!("{}", Report::header());
    let mut reports = Vec::new();
    for connections in levels {
        if args.warmup > 0 {
            workload
                .run(connections, Duration::from_secs(args.warmup))
                .await;
        }
        let mut report = workload
            .run(connections, Duration::from_secs(args.duration))
            .await;
        report.rss_kib = args.pid.and_then(report::rss_kib);
        println!("{}", report.row());
        reports.push(report);
    }
    if let Some(path) = &args.svg {
        let title = format!("{:?} throughput against concurrency", args.workload);
        std::fs::write(path, chart::throughput_svg(&title, &reports))?;
        println!("chart written to {}", path.display());
    }
    Ok(())
}
