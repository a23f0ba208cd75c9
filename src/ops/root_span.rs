//! The span every request runs in. Unlike tracing-actix-web's default it records the path and
//! never the query (which carries authorization codes, `state`, and sometimes tokens), and the
//! client address from [`ClientIp`](super::client_ip::ClientIp), not a forgeable header.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use super::client_ip::ClientIp;
use super::metrics::method_label;

pub struct PorticoRootSpan;

impl RootSpanBuilder for PorticoRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let extensions = request.extensions();
        let client_ip = match extensions.get::<ClientIp>() {
            Some(ClientIp(Some(ip))) => ip.to_string(),
            _ => String::new(),
        };
        let request_id = extensions
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let user_agent: String = request
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        tracing::info_span!(
            "HTTP request",
            http.method = method_label(request.method()),
            http.target = %request.path(),
            http.client_ip = %client_ip,
            http.user_agent = %user_agent,
            http.status_code = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(res) = outcome {
            // The route pattern is known only now; the raw path is already in the span.
            let route = res.request().match_pattern().unwrap_or_default();
            span.in_scope(|| {
                tracing::debug!(
                    target: "portico::access",
                    status = res.status().as_u16(),
                    route = %route,
                    "request done"
                )
            });
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
