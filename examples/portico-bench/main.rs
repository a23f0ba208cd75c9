//! A load driver for OpenID Connect providers, with Portico's own workloads.
//!
//! It drives a running server over HTTP with N concurrent connections for a fixed time and
//! reports throughput, p50/p90/p99 latency, errors, and the server's RSS (from /proc, when the
//! server runs on this machine and `--pid` names it). The generic workloads (discovery, jwks,
//! client-credentials) work against any provider from its discovery URL, so Portico and another
//! provider can be measured side by side.
//!
//! The Portico workloads (login, code, refresh-token, userinfo, introspect) need users, so the
//! driver serves an upstream OpenID Connect stand-in itself (`--upstream-listen`) and Portico
//! must name it as a provider: `portico-bench setup --dir D` writes such a `portico.toml`.
//! `portico-bench seed` fills a database with N users and refresh tokens to measure growth.
//!
//!   cargo run --release --example portico-bench -- --issuer http://127.0.0.1:8080 \
//!       --workload jwks --connections 64 --duration 10
//!   cargo run --release --example portico-bench -- --issuer … --workload jwks \
//!       --sweep 1,4,16,64,256 --svg docs/bench/jwks.svg
//!   cargo run --release --example portico-bench -- setup --dir /tmp/pb
//!   cargo run --release --example portico-bench -- --issuer http://127.0.0.1:18081 \
//!       --workload login --client-id bench --client-secret … --connections 16

mod browser;
mod chart;
mod report;
mod seed;
mod setup;
mod soak;
mod upstream;
mod workload;

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::report::Report;
use crate::workload::Workload;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum WorkloadKind {
    Discovery,
    Jwks,
    ClientCredentials,
    /// The whole federated login through the upstream stand-in, then the code exchange.
    Login,
    /// POST /token with authorization codes obtained before the clock starts.
    Code,
    /// POST /token refresh_token grants, each connection following its own rotation chain.
    RefreshToken,
    /// GET /userinfo with a JWT access token.
    Userinfo,
    /// POST /introspect of a JWT access token.
    Introspect,
    /// The soak: logins, refreshes and userinfo in a 1:3:6 mix, paced at `--rate`, for
    /// `--duration`, sampled every `--every` seconds (see `soak.rs`).
    Mixed,
}

impl WorkloadKind {
    /// Whether the workload logs users in, and so needs the upstream stand-in.
    pub fn needs_users(self) -> bool {
        !matches!(self, Self::Discovery | Self::Jwks | Self::ClientCredentials)
    }
}

#[derive(Debug, Parser)]
#[command(
    about = "Load driver for OpenID Connect providers",
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a portico.toml (provider = this driver's upstream stand-in, a bench client).
    Setup(setup::SetupArgs),
    /// Insert N users (with an identity and a refresh token each) into Portico's database.
    Seed(seed::SeedArgs),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The provider's issuer; discovery is read from `{issuer}/.well-known/openid-configuration`.
    #[arg(long, required = true)]
    pub issuer: Option<String>,
    #[arg(long, value_enum, required = true)]
    pub workload: Option<WorkloadKind>,
    /// Concurrent connections (each a task with its own HTTP/1.1 connection).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds to run each measurement.
    #[arg(long, short = 'd', default_value = "10", value_parser = parse_secs)]
    pub duration: u64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    pub warmup: u64,
    /// Measure at each of these concurrencies instead of `--connections` (e.g. 1,4,16,64,256).
    #[arg(long, value_delimiter = ',')]
    pub sweep: Vec<usize>,
    /// Write a throughput-against-concurrency chart of the sweep here.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// The server's process id, to report its RSS (mixed: repeat it for each instance).
    #[arg(long)]
    pub pid: Vec<u32>,
    /// mixed: listen at the issuer's address and spread connections over these instances in
    /// turn, as a load balancer does (repeat it for each instance).
    #[arg(long)]
    pub backend: Vec<std::net::SocketAddr>,
    /// mixed: seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub every: u64,
    /// mixed: write the samples here as CSV.
    #[arg(long)]
    pub csv: Option<std::path::PathBuf>,
    /// mixed: receive Portico's webhooks here and count the login events that arrive.
    #[arg(long)]
    pub webhook_listen: Option<std::net::SocketAddr>,
    #[arg(long)]
    pub client_id: Option<String>,
    #[arg(long)]
    pub client_secret: Option<String>,
    /// Scope: for client_credentials what it asks for; for the user workloads the scope of
    /// the authorization request (default "openid profile email offline_access").
    #[arg(long)]
    pub scope: Option<String>,
    /// A redirect URI registered for the client (the driver never contacts it).
    #[arg(long, default_value = setup::REDIRECT_URI)]
    pub redirect_uri: String,
    /// The provider id (the `[[providers]]` `id`) that names the upstream stand-in in Portico.
    #[arg(long, default_value = setup::PROVIDER_ID)]
    pub provider: String,
    /// Where the upstream stand-in listens; Portico's provider `issuer` must be this address.
    #[arg(long, default_value = setup::UPSTREAM_LISTEN)]
    pub upstream_listen: std::net::SocketAddr,
    /// ID token algorithm of the stand-in (RS256 as most real providers, or ES256).
    #[arg(long, default_value = "RS256")]
    pub upstream_alg: String,
    /// The stand-in's signing key, kept between runs (default: in the temporary directory).
    #[arg(long)]
    pub upstream_key_file: Option<std::path::PathBuf>,
    /// The stand-in logs in subjects bench-1 … bench-N in turn (the ones `seed` creates).
    #[arg(long, default_value_t = 1000)]
    pub upstream_users: u64,
    /// code: authorization codes obtained (untimed) before each measurement, over all
    /// connections (a warm-up gets its share by duration).
    #[arg(long, default_value_t = 10_000)]
    pub codes: usize,
    /// Pace the load at this many requests per second in all (each connection sends at
    /// rate ÷ connections), to read latency at a given load, e.g. half the peak rate.
    /// Without it every connection sends its next request as soon as the last one answered.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// Seconds, with an optional `s` suffix (`10` or `10s`).
fn parse_secs(raw: &str) -> Result<u64, String> {
    raw.trim_end_matches('s')
        .parse()
        .map_err(|_| format!("`{raw}` is not a number of seconds"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Setup(args)) => setup::run(&args),
        Some(Command::Seed(args)) => seed::run(&args).await,
        None => run(cli.run).await,
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let kind = args.workload.context("--workload is required")?;
    if kind.needs_users() {
        upstream::serve(&args).await?;
    }
    if kind == WorkloadKind::Mixed {
        // The balancer must listen before discovery is read through it.
        return soak::run(&args).await;
    }
    let workload = Workload::prepare(&args).await?;
    let levels = if args.sweep.is_empty() {
        vec![args.connections]
    } else {
        args.sweep.clone()
    };
    println!("{}", workload.describe());
    println!("{}", Report::header());
    let mut reports = Vec::new();
    for connections in levels {
        if args.warmup > 0 {
            workload
                .run(connections, Duration::from_secs(args.warmup), "warm-up: ")
                .await;
        }
        let mut report = workload
            .run(connections, Duration::from_secs(args.duration), "")
            .await;
        report.rss_kib = args.pid.first().copied().and_then(report::rss_kib);
        println!("{}", report.row());
        reports.push(report);
    }
    if let Some(path) = &args.svg {
        let title = format!("{kind:?} throughput against concurrency");
        std::fs::write(path, chart::throughput_svg(&title, &reports))?;
        println!("chart written to {}", path.display());
    }
    Ok(())
}
