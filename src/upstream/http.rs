//! The one outbound HTTP client for talking to upstream providers.
//!
//! reqwest with rustls and connect/total timeouts, plus what upstreams need from a polite client:
//! idempotent requests (GET/HEAD) are retried on 5xx, 429 and connection failures with
//! exponential backoff and jitter, honouring `Retry-After`; a 4xx is never retried and a POST
//! (a code exchange) never repeated. A per-host limit keeps a burst of logins from hammering one
//! provider. It plugs into `openidconnect`/`oauth2` as their `AsyncHttpClient`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openidconnect::http;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Retries after the first attempt, for idempotent requests only.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    /// The longest wait between attempts, whatever `Retry-After` asks for.
    pub max_backoff: Duration,
    /// Concurrent requests to one host.
    pub per_host_concurrency: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            per_host_concurrency: 32,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("upstream request to {host} failed: {message}")]
    Transport { host: String, message: String },
    #[error("bad upstream request: {0}")]
    Request(String),
}

#[derive(Clone)]
pub struct UpstreamHttp {
    client: reqwest::Client,
    settings: HttpSettings,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl std::fmt::Debug for UpstreamHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamHttp")
            .field("settings", &self.settings)
            .finish()
    }
}

impl UpstreamHttp {
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            // Following redirects would let an upstream bounce a token request elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Request(e.to_string()))?;
        Ok(Self {
            client,
            settings,
            hosts: Arc::default(),
        })
    }

    /// The underlying client, for callers that build requests with reqwest directly.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn host_permits(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().expect("host table lock");
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_host_concurrency.max(1))))
            .clone()
    }

    /// Sends `request`, retrying as the module comment says.
    pub async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response, HttpError> {
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let idempotent = matches!(request.method().as_str(), "GET" | "HEAD");
        let permits = self.host_permits(&host);
        let _permit = permits.acquire().await.map_err(|_| HttpError::Transport {
            host: host.clone(),
            message: "client shutting down".into(),
        })?;
        let mut attempt = 0;
        loop {
            let this_try = request
                .try_clone()
                .ok_or_else(|| HttpError::Request("streaming bodies are not supported".into()))?;
            let outcome = self.client.execute(this_try).await;
            let retries_left = idempotent && attempt < self.settings.max_retries;
            let wait = match &outcome {
                Ok(res) if retries_left && is_retryable(res.status()) => {
                    Some(retry_after(res).unwrap_or_else(|| self.backoff(attempt)))
                }
                Err(e) if retries_left && (e.is_connect() || e.is_timeout()) => {
                    Some(self.backoff(attempt))
                }
                _ => None,
            };
            match (wait, outcome) {
                (Some(wait), _) => {
                    tracing::debug!(%host, attempt, wait_ms = wait.as_millis() as u64, "retrying upstream request");
                    tokio::time::sleep(wait.min(self.settings.max_backoff)).await;
                    attempt += 1;
                }
                (None, Ok(res)) => return Ok(res),
                (None, Err(e)) => {
                    return Err(HttpError::Transport {
                        host,
                        message: transport_message(&e),
                    });
                }
            }
        }
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
        let mut req = reqwest::Request::new(parts.method, url);
        *req.headers_mut() = parts.headers;
        *req.body_mut() = Some(body.into());
        let res = self.send(req).await?;
        let host = res.url().host_str().unwrap_or_default().to_owned();
        let mut builder = http::Response::builder().status(res.status());
        for (name, value) in res.headers() {
            builder = builder.header(name, value);
        }
        let bytes = res.bytes().await.map_err(|e| HttpError::Transport {
            host,
            message: transport_message(&e),
        })?;
        builder
            .body(bytes.to_vec())
            .map_err(|e| HttpError::Request(e.to_string()))
    }
}

fn is_retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs; it falls back to backoff).
fn retry_after(res: &reqwest::Response) -> Option<Duration> {
    res.headers()
        .get(reqwest::header::RETRY_AFTER)?
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

    fn client() -> UpstreamHttp {
        UpstreamHttp::new(HttpSettings {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..HttpSettings::default()
        })
        .unwrap()
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
        let http = UpstreamHttp::new(HttpSettings {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_secs(2),
            ..HttpSettings::default()
        })
        .unwrap();
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

    #[tokio::test]
    async fn it_serves_as_the_openidconnect_http_client() {
        let (url, _) = flaky_server(1, 502, None).await;
        let http = client();
        let request = http::Request::builder()
            .method("GET")
            .uri(url)
            .body(Vec::new())
            .unwrap();
        let res = openidconnect::AsyncHttpClient::call(&http, request)
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.body(), b"yes");
    }
}
