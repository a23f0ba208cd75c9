//! What each connection does: untimed set-up (a login, a batch of codes), then a loop of
//! timed operations until the deadline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::Barrier;

use crate::browser::{Authorized, Browser, Shared};
use crate::report::Report;
use crate::{Args, WorkloadKind};

const DEFAULT_USER_SCOPE: &str = "openid profile email offline_access";

#[derive(Debug, Deserialize)]
struct Discovery {
    jwks_uri: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
}

/// One request's recipe for the generic workloads: prepared before the clock starts.
enum Request {
    Get(String),
    Form {
        url: String,
        form: Vec<(String, String)>,
        basic: Option<(String, String)>,
    },
}

enum Plan {
    Plain(Arc<Request>),
    Users(Arc<Shared>),
}

pub struct Workload {
    kind: WorkloadKind,
    plan: Plan,
    /// code: codes obtained per measurement of `measure` (a warm-up gets its share), over
    /// all connections.
    codes: usize,
    measure: Duration,
    /// `--rate`: requests per second over all connections.
    rate: Option<f64>,
}

fn credentials(args: &Args) -> anyhow::Result<(String, String)> {
    match (&args.client_id, &args.client_secret) {
        (Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
        _ => anyhow::bail!("this workload needs --client-id and --client-secret"),
    }
}

impl Workload {
    pub async fn prepare(args: &Args) -> anyhow::Result<Self> {
        let kind = args.workload.context("--workload is required")?;
        let issuer = args
            .issuer
            .as_deref()
            .context("--issuer is required")?
            .trim_end_matches('/');
        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = reqwest::get(&discovery_url)
            .await
            .with_context(|| format!("fetching {discovery_url}"))?
            .error_for_status()?
            .json()
            .await?;
        let token_endpoint = || {
            discovery
                .token_endpoint
                .clone()
                .context("the provider advertises no token endpoint")
        };
        let plan = match kind {
            WorkloadKind::Discovery => Plan::Plain(Arc::new(Request::Get(discovery_url.clone()))),
            WorkloadKind::Jwks => Plan::Plain(Arc::new(Request::Get(discovery.jwks_uri.clone()))),
            WorkloadKind::ClientCredentials => {
                let (id, secret) = credentials(args)?;
                let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
                if let Some(scope) = &args.scope {
                    form.push(("scope".to_owned(), scope.clone()));
                }
                Plan::Plain(Arc::new(Request::Form {
                    url: token_endpoint()?,
                    form,
                    basic: Some((id, secret)),
                }))
            }
            _ => {
                let (client_id, client_secret) = credentials(args)?;
                let origin = url::Url::parse(issuer)
                    .context("--issuer is not a URL")?
                    .origin()
                    .ascii_serialization();
                Plan::Users(Arc::new(Shared {
                    issuer_origin: origin,
                    authorization_endpoint: discovery
                        .authorization_endpoint
                        .clone()
                        .context("the provider advertises no authorization endpoint")?,
                    token_endpoint: token_endpoint()?,
                    userinfo_endpoint: discovery
                        .userinfo_endpoint
                        .clone()
                        .context("the provider advertises no userinfo endpoint")?,
                    introspection_endpoint: discovery
                        .introspection_endpoint
                        .clone()
                        .context("the provider advertises no introspection endpoint")?,
                    client_id,
                    client_secret,
                    redirect_uri: args.redirect_uri.clone(),
                    scope: args
                        .scope
                        .clone()
                        .unwrap_or_else(|| DEFAULT_USER_SCOPE.to_owned()),
                    provider: args.provider.clone(),
                }))
            }
        };
        Ok(Self {
            kind,
            plan,
            codes: args.codes,
            measure: Duration::from_secs(args.duration.max(1)),
            rate: args.rate.filter(|r| *r > 0.0),
        })
    }

    /// The endpoints and client of the user workloads.
    pub fn users(&self) -> Option<Arc<Shared>> {
        match &self.plan {
            Plan::Users(shared) => Some(shared.clone()),
            Plan::Plain(_) => None,
        }
    }

    /// One line on what is timed, printed above the table.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            WorkloadKind::Discovery => "GET discovery document",
            WorkloadKind::Jwks => "GET jwks_uri",
            WorkloadKind::ClientCredentials => "POST /token grant_type=client_credentials",
            WorkloadKind::Login => {
                "one complete login, timed from GET /authorize to the token response: \
                 /authorize -> /login -> upstream /authorize -> /callback (Portico exchanges \
                 the upstream code, verifies the ID token, reads userinfo) -> POST /token; a new \
                 browser each time (cookies cleared), one keep-alive connection per task"
            }
            WorkloadKind::Code => {
                "POST /token grant_type=authorization_code only; the codes come from the \
                 connection's SSO session (GET /authorize) before the clock starts, and a \
                 connection stops early when its codes run out"
            }
            WorkloadKind::RefreshToken => {
                "POST /token grant_type=refresh_token; each connection rotates its own chain \
                 (started by an untimed login), ID token included"
            }
            WorkloadKind::Userinfo => {
                "GET /userinfo with the JWT access token of an untimed login per connection"
            }
            WorkloadKind::Introspect => {
                "POST /introspect of the JWT access token of an untimed login per connection"
            }
            WorkloadKind::Mixed => "logins, refreshes and userinfo, 1:3:6, paced",
        };
        format!("workload {:?}: {what}", self.kind)
    }

    /// Sets up `connections` connections (untimed), then runs their loops for `duration` and
    /// merges what they measured.
    /// `label` prefixes what it reports on stderr (e.g. "warm-up: ").
    pub async fn run(&self, connections: usize, duration: Duration, label: &str) -> Report {
        let connections = connections.max(1);
        let barrier = Arc::new(Barrier::new(connections + 1));
        let share = duration.as_secs_f64() / self.measure.as_secs_f64();
        let codes = (self.codes as f64 * share.min(1.0)).ceil() as usize;
        let codes_each = codes.div_ceil(connections).max(1);
        // Paced: each connection sends one request per `interval`.
        let interval = self
            .rate
            .map(|r| Duration::from_secs_f64(connections as f64 / r));
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let barrier = barrier.clone();
                let plan = match &self.plan {
                    Plan::Plain(r) => Plan::Plain(r.clone()),
                    Plan::Users(s) => Plan::Users(s.clone()),
                };
                let kind = self.kind;
                tokio::spawn(async move {
                    let opened = Connection::open(kind, plan, codes_each).await;
                    barrier.wait().await;
                    match opened {
                        Ok(mut conn) => conn.run(Instant::now() + duration, interval).await,
                        Err(e) => Tally::failed_setup(e),
                    }
                })
            })
            .collect();
        barrier.wait().await;
        let started = Instant::now();
        let mut total = Tally::new();
        for task in tasks {
            match task.await {
                Ok(t) => total.merge(t),
                Err(e) => total.merge(Tally::failed_setup(format!("task failed: {e}"))),
            }
        }
        let elapsed = started.elapsed();
        if total.setup_failures > 0 {
            eprintln!(
                "{label}{} connections could not be set up (counted as errors)",
                total.setup_failures
            );
        }
        if let Some(message) = &total.first_error {
            eprintln!("{label}{} failures; the first: {message}", total.errors);
        }
        if total.exhausted > 0 {
            eprintln!(
                "{label}{} connections used up their codes before the deadline; the rate is over \
                 the {:.1} s until the last one finished (raise --codes)",
                total.exhausted,
                elapsed.as_secs_f64()
            );
        }
        Report {
            connections,
            elapsed,
            ok: total.ok,
            errors: total.errors,
            latency_us: total.latency,
            rss_kib: None,
        }
    }
}

/// What one connection measured.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    errors: u64,
    setup_failures: u64,
    exhausted: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new(3).expect("histogram"),
            ok: 0,
            errors: 0,
            setup_failures: 0,
            exhausted: 0,
            first_error: None,
        }
    }

    fn failed_setup(message: String) -> Self {
        let mut t = Self::new();
        t.errors = 1;
        t.setup_failures = 1;
        t.first_error = Some(format!("set-up: {message}"));
        t
    }

    fn merge(&mut self, other: Tally) {
        self.latency
            .add(other.latency)
            .expect("compatible histograms");
        self.ok += other.ok;
        self.errors += other.errors;
        self.setup_failures += other.setup_failures;
        self.exhausted += other.exhausted;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

enum Outcome {
    Done(Duration),
    Failed(String),
    /// Nothing left to do (the code workload's batch is used up).
    Exhausted,
}

/// A connection's state between operations.
enum Connection {
    Plain {
        client: reqwest::Client,
        request: Arc<Request>,
    },
    Login(Browser),
    Code {
        browser: Browser,
        codes: VecDeque<Authorized>,
    },
    /// `None` after a failed refresh: the next operation first logs in again (untimed).
    Refresh {
        browser: Browser,
        token: Option<String>,
    },
    Userinfo {
        browser: Browser,
        access: String,
    },
    Introspect {
        browser: Browser,
        access: String,
    },
}

impl Connection {
    async fn open(kind: WorkloadKind, plan: Plan, codes: usize) -> Result<Self, String> {
        let shared = match plan {
            Plan::Plain(request) => {
                // One client per loop: its own keep-alive connection, as a separate user has.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .map_err(|e| e.to_string())?;
                return Ok(Self::Plain { client, request });
            }
            Plan::Users(shared) => shared,
        };
        let mut browser = Browser::new(shared);
        if kind == WorkloadKind::Login {
            return Ok(Self::Login(browser));
        }
        let tokens = browser.login().await?;
        Ok(match kind {
            WorkloadKind::Code => {
                let mut batch = VecDeque::with_capacity(codes);
                for _ in 0..codes {
                    batch.push_back(browser.sso_code().await?);
                }
                Self::Code {
                    browser,
                    codes: batch,
                }
            }
            WorkloadKind::RefreshToken => {
                let token = tokens
                    .refresh_token
                    .ok_or("the login returned no refresh token (is offline_access allowed?)")?;
                Self::Refresh {
                    browser,
                    token: Some(token),
                }
            }
            WorkloadKind::Userinfo => Self::Userinfo {
                browser,
                access: tokens.access_token,
            },
            _ => Self::Introspect {
                browser,
                access: tokens.access_token,
            },
        })
    }

    async fn run(&mut self, deadline: Instant, interval: Option<Duration>) -> Tally {
        let mut tally = Tally::new();
        let mut next = Instant::now();
        while Instant::now() < deadline {
            if let Some(interval) = interval {
                // Latency is timed from the send; at a rate the server keeps up with, sends
                // go out on schedule.
                tokio::time::sleep_until(next.into()).await;
                next += interval;
                if Instant::now() >= deadline {
                    break;
                }
            }
            match self.step().await {
                Outcome::Done(took) => {
                    tally.ok += 1;
                    let _ = tally.latency.record(took.as_micros() as u64);
                }
                Outcome::Failed(message) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(message);
                }
                Outcome::Exhausted => {
                    tally.exhausted += 1;
                    break;
                }
            }
        }
        tally
    }

    async fn step(&mut self) -> Outcome {
        let t0 = Instant::now();
        let result = match self {
            Self::Plain { client, request } => plain(client, request).await,
            Self::Login(browser) => browser.login().await.map(drop),
            Self::Code { browser, codes } => {
                let Some(code) = codes.pop_front() else {
                    return Outcome::Exhausted;
                };
                browser.exchange(&code).await.map(drop)
            }
            Self::Refresh { browser, token } => {
                let current = match token.take() {
                    Some(t) => t,
                    None => match browser.login().await {
                        Ok(tokens) => match tokens.refresh_token {
                            Some(t) => t,
                            None => {
                                return Outcome::Failed("re-login without refresh token".into());
                            }
                        },
                        Err(e) => return Outcome::Failed(format!("re-login: {e}")),
                    },
                };
                // The clock starts here: a re-login above is not part of the refresh.
                let t0 = Instant::now();
                return match browser.refresh(&current).await {
                    Ok(tokens) => {
                        *token = tokens.refresh_token;
                        Outcome::Done(t0.elapsed())
                    }
                    Err(e) => Outcome::Failed(e),
                };
            }
            Self::Userinfo { browser, access } => browser.userinfo(access).await,
            Self::Introspect { browser, access } => browser.introspect(access).await,
        };
        match result {
            Ok(()) => Outcome::Done(t0.elapsed()),
            Err(e) => Outcome::Failed(e),
        }
    }
}

async fn plain(client: &reqwest::Client, request: &Request) -> Result<(), String> {
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
    match sent {
        Ok(res) if res.status().is_success() => {
            res.bytes().await.map(drop).map_err(|e| e.to_string())
        }
        Ok(res) => {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            Err(format!(
                "{status}: {}",
                body.chars().take(200).collect::<String>()
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}
