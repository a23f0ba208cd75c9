//! What each connection does in a loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::report::Report;
use crate::{Args, WorkloadKind};

#[derive(Debug, Deserialize)]
struct Discovery {
    jwks_uri: String,
    token_endpoint: Option<String>,
}

/// One request's recipe: everything prepared before the clock starts.
#[derive(Clone)]
enum Request {
    Get(String),
    Form {
        url: String,
        form: Vec<(String, String)>,
        basic: Option<(String, String)>,
    },
}

pub struct Workload {
    request: Arc<Request>,
}

impl Workload {
    pub async fn prepare(args: &Args) -> anyhow::Result<Self> {
        let issuer = args.issuer.trim_end_matches('/');
        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = reqwest::get(&discovery_url)
            .await
            .with_context(|| format!("fetching {discovery_url}"))?
            .error_for_status()?
            .json()
            .await?;
        let request = match args.workload {
            WorkloadKind::Discovery => Request::Get(discovery_url),
            WorkloadKind::Jwks => Request::Get(discovery.jwks_uri),
            WorkloadKind::ClientCredentials => {
                let (Some(id), Some(secret)) = (&args.client_id, &args.client_secret) else {
                    anyhow::bail!("client-credentials needs --client-id and --client-secret");
                };
                let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
                if let Some(scope) = &args.scope {
                    form.push(("scope".to_owned(), scope.clone()));
                }
                Request::Form {
                    url: discovery
                        .token_endpoint
                        .context("the provider advertises no token endpoint")?,
                    form,
                    basic: Some((id.clone(), secret.clone())),
                }
            }
        };
        Ok(Self {
            request: Arc::new(request),
        })
    }

    /// Runs `connections` loops for `duration` and merges what they measured.
    pub async fn run(&self, connections: usize, duration: Duration) -> Report {
        let started = Instant::now();
        let deadline = started + duration;
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let request = self.request.clone();
                tokio::spawn(async move { connection_loop(&request, deadline).await })
            })
            .collect();
        let mut latency = Histogram::<u64>::new(3).expect("histogram");
        let (mut ok, mut errors) = (0, 0);
        let mut first_error = None;
        for task in tasks {
            if let Ok((h, o, e, err)) = task.await {
                latency.add(h).expect("compatible histograms");
                ok += o;
                errors += e;
                first_error = first_error.or(err);
            }
        }
        if let Some(message) = first_error {
            eprintln!("{errors} requests failed; the first: {message}");
        }
        Report {
            connections,
            elapsed: started.elapsed(),
            ok,
            errors,
            latency_us: latency,
            rss_kib: None,
        }
    }
}

type LoopResult = (Histogram<u64>, u64, u64, Option<String>);

async fn connection_loop(request: &Request, deadline: Instant) -> LoopResult {
    // One client per loop: its own keep-alive connection, as a separate user would have.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("HTTP client");
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    let (mut ok, mut errors) = (0, 0);
    let mut first_error = None;
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let sent = match request {
            Request::Get(url) => client.get(url).send().await,
            Request::Form { url, form, basic } => {
                let mut req = client.post(url).form(form);
                if let Some((id, secret)) = basic {
                    req = req.basic_auth(id, Some(secret));
                }
                req.send().await
            }
        };
        let failure = match sent {
            Ok(res) if res.status().is_success() => res.bytes().await.err().map(|e| e.to_string()),
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                Some(format!(
                    "{status}: {}",
                    body.chars().take(200).collect::<String>()
                ))
            }
            Err(e) => Some(e.to_string()),
        };
        match failure {
            None => {
                ok += 1;
                let _ = latency.record(t0.elapsed().as_micros() as u64);
            }
            Some(message) => {
                errors += 1;
                first_error.get_or_insert(message);
            }
        }
    }
    (latency, ok, errors, first_error)
}
