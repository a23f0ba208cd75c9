//! The one outbound HTTP client for talking to upstream providers.
//!
//! reqwest with rustls and three timeouts on every request: connecting, the whole request
//! (headers and body), and the longest silence while reading, so that a provider that accepts
//! and never answers, or sends headers and then stalls, ends in bounded time. Answers are read
//! whole, at most [`MAX_BODY_BYTES`], before the request counts as done. What upstreams need
//! from a polite client: idempotent requests (GET/HEAD) are retried on 5xx, 429 and connection
//! failures with exponential backoff and jitter, honouring `Retry-After`; a 4xx or a timeout is
//! never retried and a POST (a code exchange) never repeated.
//!
//! A connector's client is scoped to its provider ([`UpstreamHttp::for_provider`]): its
//! requests pass that provider's bulkhead and circuit breaker ([`super::guard`]), so one
//! provider that hangs or fails cannot hold the requests to the others. It plugs into
//! `openidconnect`/`oauth2` as their `AsyncHttpClient`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::http;

use super::ProviderId;
use super::guard::{Admission, CircuitState, GuardSettings, Guards, ProviderGuard, Rejected};

/// The largest answer read from an upstream (discovery documents, key sets, token responses,
/// API pages are far smaller); a larger one fails the request.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// One attempt, from connecting to the last byte of the body.
    pub timeout: Duration,
    /// The longest wait for the next bytes of an answer (headers or body).
    pub read_timeout: Duration,
    /// Retries after the first attempt, for idempotent requests only.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    /// The longest wait between attempts, whatever `Retry-After` asks for.
    pub max_backoff: Duration,
    /// How long an idle connection is kept for reuse. Shorter than the keep-alive of common
    /// servers (5 s for actix-web and Node, more for nginx and load balancers), so that a
    /// request never goes out on a connection the provider is closing at that moment: that
    /// fails the request, and a POST (a code exchange) is never repeated.
    pub pool_idle_timeout: Duration,
    /// Each provider's bulkhead and breaker.
    pub guard: GuardSettings,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(10),
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(2),
            guard: GuardSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("upstream request to {host} failed: {message}")]
    Transport { host: String, message: String },
    #[error("bad upstream request: {0}")]
    Request(String),
    /// The provider's bulkhead is full or its breaker open: refused without a request.
    #[error("{0}")]
    Refused(#[from] Rejected),
}

#[derive(Clone)]
pub struct UpstreamHttp {
    client: reqwest::Client,
    settings: HttpSettings,
    guards: Arc<Guards>,
    /// The provider this client is scoped to; `None`: unguarded (admin checks).
    guard: Option<Arc<ProviderGuard>>,
}

impl std::fmt::Debug for UpstreamHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamHttp")
            .field("settings", &self.settings)
            .finish()
    }
}

/// A request's answer, read whole, or why there is none.
type Attempt = Result<http::Response<Vec<u8>>, HttpError>;

impl UpstreamHttp {
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .read_timeout(settings.read_timeout)
            .pool_idle_timeout(settings.pool_idle_timeout)
            // Following redirects would let an upstream bounce a token request elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Request(e.to_string()))?;
        Ok(Self {
            client,
            guards: Arc::new(Guards::new(settings.guard.clone())),
            settings,
            guard: None,
        })
    }

    /// This client scoped to `provider`: its requests pass the provider's bulkhead and breaker,
    /// shared by every client scoped to the same provider.
    pub fn for_provider(&self, provider: &ProviderId) -> Self {
        Self {
            guard: Some(self.guards.of(provider.as_str())),
            ..self.clone()
        }
    }

    /// The breaker state of `provider`.
    pub fn circuit(&self, provider: &ProviderId) -> CircuitState {
        self.guards.state(provider.as_str())
    }

    /// Why a request to `provider` would be refused now, its breaker being open.
    pub fn open_refusal(&self, provider: &ProviderId) -> Option<Rejected> {
        self.guards.open_refusal(provider.as_str())
    }

    /// The underlying client, for callers that build requests with reqwest directly.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request` and reads its answer whole, retrying as the module comment says. The
    /// response returned holds the body in memory.
    pub async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response, HttpError> {
        let admission = self.guard.as_ref().map(|g| g.admit()).transpose()?;
        let outcome = self.send_admitted(request, admission.as_ref()).await;
        if let Some(admission) = admission {
            let healthy = outcome
                .as_ref()
                .is_ok_and(|res| !is_retryable(res.status()));
            admission.settle(healthy);
        }
        outcome.map(reqwest::Response::from)
    }

    async fn send_admitted(
        &self,
        request: reqwest::Request,
        admission: Option<&Admission>,
    ) -> Attempt {
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let idempotent = matches!(request.method().as_str(), "GET" | "HEAD");
        let mut attempt = 0;
        loop {
            let this_try = request
                .try_clone()
                .ok_or_else(|| HttpError::Request("streaming bodies are not supported".into()))?;
            let (outcome, connect_failed) = self.attempt(this_try, &host).await;
            let retries_left = idempotent
                && attempt < self.settings.max_retries
                && !admission.is_some_and(Admission::circuit_opened);
            let wait = match &outcome {
                Ok(res) if retries_left && is_retryable(res.status()) => {
                    Some(retry_after(res).unwrap_or_else(|| self.backoff(attempt)))
                }
                Err(_) if retries_left && connect_failed => Some(self.backoff(attempt)),
                _ => None,
            };
            let Some(wait) = wait else {
                return outcome;
            };
            tracing::debug!(%host, attempt, wait_ms = wait.as_millis() as u64, "retrying upstream request");
            tokio::time::sleep(wait.min(self.settings.max_backoff)).await;
            attempt += 1;
        }
    }

    /// One attempt: the answer read whole (within the client's timeouts and
    /// [`MAX_BODY_BYTES`]), and whether it failed before connecting (worth a retry).
    async fn attempt(&self, request: reqwest::Request, host: &str) -> (Attempt, bool) {
        let failed = |e: &reqwest::Error| HttpError::Transport {
            host: host.to_owned(),
            message: transport_message(e),
        };
        let mut res = match self.client.execute(request).await {
            Ok(res) => res,
            Err(e) => return (Err(failed(&e)), e.is_connect() && !e.is_timeout()),
        };
        let mut builder = http::Response::builder().status(res.status());
        for (name, value) in res.headers() {
            builder = builder.header(name, value);
        }
        if res
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return (Err(too_large(host)), false);
        }
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY_BYTES => {
                    return (Err(too_large(host)), false);
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return (Err(failed(&e)), false),
            }
        }
        let response = builder
            .body(body)
            .map_err(|e| HttpError::Request(e.to_string()));
        (response, false)
    }

    /// Exponential backoff with full jitter: a random wait in [0, initial * 2^attempt].
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .settings
            .initial_backoff
            .saturating_mul(1 << attempt.min(10))
            .min(self.settings.max_backoff);
        let mut byte = [0u8; 2];
        crate::crypto::random_bytes(&mut byte);
        let fraction = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
        ceiling.mul_f64(fraction.max(0.1))
    }

    /// Executes an `http` crate request (what oauth2/openidconnect hand us).
    pub async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let (parts, body) = request.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut req = reqwest::Request::new(parts.method, url);
        *req.headers_mut() = parts.headers;
        *req.body_mut() = Some(body.into());
        let res = self.send(req).await?;
        // oauth2 reads any non-2xx answer as an OAuth error response and calls one it cannot
        // parse unreadable; a provider failing or throttling is unavailable instead.
        if is_retryable(res.status()) {
            return Err(HttpError::Transport {
                host,
                message: format!("answered {}", res.status()),
            });
        }
        let mut builder = http::Response::builder().status(res.status());
        for (name, value) in res.headers() {
            builder = builder.header(name, value);
        }
        // Already in memory: `send` read it.
        let bytes = res
            .bytes()
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        builder
            .body(bytes.to_vec())
            .map_err(|e| HttpError::Request(e.to_string()))
    }
}

fn too_large(host: &str) -> HttpError {
    HttpError::Transport {
        host: host.to_owned(),
        message: format!("the answer is larger than {} MiB", MAX_BODY_BYTES >> 20),
    }
}

fn is_retryable(status: http::StatusCode) -> bool {
    status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs; it falls back to backoff).
fn retry_after(res: &http::Response<Vec<u8>>) -> Option<Duration> {
    res.headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// reqwest's Display can include the full URL with query; keep only the kind of failure.
fn transport_message(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "unreadable response".into()
    } else {
        "request failed".into()
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for UpstreamHttp {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Vec<u8>>, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: http::Request<Vec<u8>>) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::{App, HttpResponse, HttpServer, web};

    use super::*;

    /// A server whose `/flaky` answers `status` for the first `failures` calls, then 200.
    async fn flaky_server(
        failures: usize,
        status: u16,
        retry_after: Option<&'static str>,
    ) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let server = HttpServer::new(move || {
            let counter = counter.clone();
            App::new().route(
                "/flaky",
                web::route().to(move || {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n < failures {
                            let mut res = HttpResponse::build(
                                actix_web::http::StatusCode::from_u16(status).unwrap(),
                            );
                            if let Some(after) = retry_after {
                                res.insert_header(("Retry-After", after));
                            }
                            res.body("no")
                        } else {
                            HttpResponse::Ok().body("yes")
                        }
                    }
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        (format!("http://127.0.0.1:{port}/flaky"), calls)
    }

    fn settings(settings: HttpSettings) -> UpstreamHttp {
        UpstreamHttp::new(settings).unwrap()
    }

    fn client() -> UpstreamHttp {
        settings(HttpSettings {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..HttpSettings::default()
        })
    }

    fn get(url: &str) -> reqwest::Request {
        reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap())
    }

    #[tokio::test]
    async fn a_5xx_get_is_retried_until_it_succeeds() {
        let (url, calls) = flaky_server(2, 503, None).await;
        let res = client().send(get(&url)).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_stop_after_the_limit() {
        let (url, calls) = flaky_server(10, 500, None).await;
        let res = client().send(get(&url)).await.unwrap();
        assert_eq!(res.status(), 500);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one try and two retries");
    }

    #[tokio::test]
    async fn a_4xx_is_never_retried() {
        let (url, calls) = flaky_server(1, 404, None).await;
        let res = client().send(get(&url)).await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_post_is_never_repeated() {
        let (url, calls) = flaky_server(1, 503, None).await;
        let req = reqwest::Request::new(reqwest::Method::POST, url.parse().unwrap());
        let res = client().send(req).await.unwrap();
        assert_eq!(res.status(), 503);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retry_after_is_honoured_within_the_cap() {
        let (url, calls) = flaky_server(1, 429, Some("1")).await;
        let http = settings(HttpSettings {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_secs(2),
            ..HttpSettings::default()
        });
        let started = std::time::Instant::now();
        let res = http.send(get(&url)).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(
            started.elapsed() >= Duration::from_millis(950),
            "{:?}",
            started.elapsed()
        );
    }

    /// A raw TCP server that reads each request and then answers `reply` (possibly only a
    /// part of an answer) and keeps the connection open without another byte.
    async fn stalling_server(reply: &'static [u8]) -> String {
        stalling_server_counted(reply).await.0
    }

    /// As [`stalling_server`], with the number of connections it accepted.
    async fn stalling_server_counted(reply: &'static [u8]) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply).await;
                open.push(socket);
            }
        });
        (format!("http://127.0.0.1:{port}/stall"), accepted)
    }

    /// A server that keeps each connection open after its answer, and closes it, unanswered,
    /// when a second request arrives on it: a server whose keep-alive timeout ends just as the
    /// client reuses the idle connection (actix-web and Node close idle connections after 5 s).
    async fn one_answer_per_connection_server() -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                        .await;
                    // The next request on this connection is read, then the connection closes.
                    let _ = socket.read(&mut buf).await;
                });
            }
        });
        (format!("http://127.0.0.1:{port}/doc"), accepted)
    }

    #[tokio::test]
    async fn an_idle_connection_is_not_reused_after_the_pool_idle_timeout() {
        let http = settings(HttpSettings {
            pool_idle_timeout: Duration::from_millis(200),
            ..HttpSettings::default()
        });
        let (url, accepted) = one_answer_per_connection_server().await;
        // A POST is never repeated, so it must not meet a connection the server is closing.
        for _ in 0..2 {
            let res = call(&http, "POST", url.clone()).await.unwrap();
            assert_eq!(res.status(), 200);
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "a new connection each time"
        );
    }

    /// A request to `url` with a 300 ms read and a 1.5 s total timeout fails as timed out,
    /// ended by the read timeout, without a retry.
    async fn assert_read_timeout(url: &str) {
        let http = settings(HttpSettings {
            timeout: Duration::from_millis(1500),
            read_timeout: Duration::from_millis(300),
            ..HttpSettings::default()
        });
        let started = std::time::Instant::now();
        let err = http.send(get(url)).await.unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(1400), "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_once() {
        assert_read_timeout(&stalling_server(b"").await).await;
    }

    #[tokio::test]
    async fn headers_then_a_stalled_body_time_out() {
        let url = stalling_server(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"iss",
        )
        .await;
        assert_read_timeout(&url).await;
        // Without a read timeout, the request timeout ends it.
        let http = settings(HttpSettings {
            timeout: Duration::from_millis(500),
            read_timeout: Duration::from_secs(60),
            ..HttpSettings::default()
        });
        let err = http.send(get(&url)).await.unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn an_answer_over_the_size_limit_is_refused() {
        let url = stalling_server(b"HTTP/1.1 200 OK\r\ncontent-length: 999999999\r\n\r\n").await;
        let err = client().send(get(&url)).await.unwrap_err();
        assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
    }

    #[tokio::test]
    async fn a_scoped_client_opens_its_breaker_and_stops_calling() {
        let (url, calls) = flaky_server(100, 503, None).await;
        let http = settings(HttpSettings {
            max_retries: 0,
            guard: GuardSettings {
                max_concurrent: 4,
                breaker_failures: 3,
                breaker_cooldown: Duration::from_secs(60),
            },
            ..HttpSettings::default()
        });
        let provider = ProviderId::parse("flaky").unwrap();
        let scoped = http.for_provider(&provider);
        for _ in 0..3 {
            assert_eq!(scoped.send(get(&url)).await.unwrap().status(), 503);
        }
        assert_eq!(http.circuit(&provider), CircuitState::Open);
        let err = scoped.send(get(&url)).await.unwrap_err();
        assert!(
            matches!(err, HttpError::Refused(Rejected::Open { .. })),
            "{err}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3, "no request while open");
        assert!(http.open_refusal(&provider).is_some());
        // Another provider, and the unscoped client, are not held back.
        let other = http.for_provider(&ProviderId::parse("other").unwrap());
        assert_eq!(other.send(get(&url)).await.unwrap().status(), 503);
        assert_eq!(http.send(get(&url)).await.unwrap().status(), 503);
    }

    #[tokio::test]
    async fn a_full_bulkhead_refuses_at_once() {
        let (url, accepted) = stalling_server_counted(b"").await;
        let http = settings(HttpSettings {
            timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            guard: GuardSettings {
                max_concurrent: 2,
                ..GuardSettings::default()
            },
            ..HttpSettings::default()
        });
        let scoped = http.for_provider(&ProviderId::parse("hangs").unwrap());
        let stuck: Vec<_> = (0..2)
            .map(|_| {
                let scoped = scoped.clone();
                let url = url.clone();
                tokio::spawn(async move { scoped.send(get(&url)).await })
            })
            .collect();
        let waiting = std::time::Instant::now();
        while accepted.load(Ordering::SeqCst) < 2 {
            assert!(
                waiting.elapsed() < Duration::from_secs(20),
                "never connected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = std::time::Instant::now();
        let err = scoped.send(get(&url)).await.unwrap_err();
        assert!(
            matches!(err, HttpError::Refused(Rejected::Busy { max: 2, .. })),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "refused without a request"
        );
        for task in stuck {
            task.abort();
        }
    }

    /// `method url` through the `AsyncHttpClient` interface, as oauth2 calls it.
    async fn call(http: &UpstreamHttp, method: &str, url: String) -> Attempt {
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .body(Vec::new())
            .unwrap();
        openidconnect::AsyncHttpClient::call(http, request).await
    }

    #[tokio::test]
    async fn it_serves_as_the_openidconnect_http_client() {
        let http = client();
        let (url, _) = flaky_server(1, 502, None).await;
        let res = call(&http, "GET", url).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.body(), b"yes");
        // A 5xx that is not retried (a POST) is a transport failure to oauth2, not an OAuth
        // error response it cannot parse.
        let (url, _) = flaky_server(1, 503, None).await;
        let err = call(&http, "POST", url).await.unwrap_err();
        assert!(err.to_string().contains("answered 503"), "{err}");
    }
}
