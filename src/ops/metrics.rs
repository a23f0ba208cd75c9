//! Prometheus metrics: one process-wide recorder, a middleware that times every request by
//! method, route pattern and status (each from a bounded set, so made-up methods and ids in URLs
//! do not explode the label space), periodic upkeep so samples do not pile up between scrapes,
//! and `/metrics` (optionally on its own listener, optionally behind a bearer token).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use tracing_actix_web::RequestId;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder; installed on first use, so several apps in one test process share it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist in tests that embed Portico; ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts and times each request, and echoes its request id to the client; the request runs
/// with that id as the current one (`request_id::current`), so the pages it renders show it.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut res = super::request_id::scope(request_id.clone(), next.call(req)).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    Ok(res)
}

/// The method as a label: the standard methods by name, anything else `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Folds recorded histogram samples into their buckets every `period`, until aborted. Without
/// it, samples wait in per-histogram buffers for the next scrape, and grow without one.
pub fn spawn_upkeep(handle: PrometheusHandle, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            handle.run_upkeep();
            metrics::counter!("portico_metrics_upkeep_runs_total").increment(1);
        }
    })
}

/// What `GET /metrics` serves, and who may read it (`[metrics] bearer_token`).
pub struct MetricsEndpoint {
    pub handle: PrometheusHandle,
    pub bearer_token: Option<secrecy::SecretString>,
}

/// `GET /metrics`, on the main listener or on `metrics.listen`.
pub async fn render(req: HttpRequest, endpoint: web::Data<MetricsEndpoint>) -> HttpResponse {
    if let Some(token) = &endpoint.bearer_token
        && !bearer_matches(&req, token.expose_secret())
    {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
            .finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(endpoint.handle.render())
}

/// Whether the request carries `Authorization: Bearer <expected>`, compared in constant time.
fn bearer_matches(req: &HttpRequest, expected: &str) -> bool {
    let presented = super::bearer::token(req).unwrap_or("");
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// The routes of the metrics-only listener.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(render));
}
