//! The span every request runs in. Unlike tracing-actix-web's default it records the path and
//! never the query (which carries authorization codes, `state`, and sometimes tokens), and the
//! client address from [`ClientIp`](super::client_ip::ClientIp), not a forgeable header.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{Error, HttpMessage};
use tracing::{Level, Span};
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
        span.in_scope(|| log_failure(outcome));
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// One event per request that ended in an error, at the level of whose fault it was. (This
/// replaces tracing-actix-web's `emit_event_on_error`, which logs an error sent as anything but
/// a 4xx, such as the admin UI's redirect to its sign-in page, as an ERROR.)
fn log_failure<B>(outcome: &Result<ServiceResponse<B>, Error>) {
    let (error, sent) = match outcome {
        Ok(res) => match res.response().error() {
            Some(error) => (error.as_response_error(), res.status()),
            None => return,
        },
        Err(error) => {
            let error = error.as_response_error();
            (error, error.status_code())
        }
    };
    let status = sent.as_u16();
    match level(error.status_code(), sent) {
        Level::ERROR => tracing::error!(status, error = ?error, "request failed"),
        Level::DEBUG => tracing::debug!(status, error = %error, "request sent elsewhere"),
        _ => tracing::info!(status, error = %error, "request refused"),
    }
}

/// ERROR for a failure of the server's (5xx); for the client's (4xx) INFO, or DEBUG when the
/// answer sends it on (a redirect, such as to the sign-in page).
fn level(error: StatusCode, sent: StatusCode) -> Level {
    if error.is_server_error() || sent.is_server_error() {
        Level::ERROR
    } else if sent.is_redirection() {
        Level::DEBUG
    } else {
        Level::INFO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_failures_are_errors() {
        let level = |error: u16, sent: u16| {
            level(
                StatusCode::from_u16(error).unwrap(),
                StatusCode::from_u16(sent).unwrap(),
            )
        };
        assert_eq!(level(500, 500), Level::ERROR);
        assert_eq!(level(503, 503), Level::ERROR);
        assert_eq!(level(401, 500), Level::ERROR);
        // The admin UI's "sign in first": a 401 sent as a redirect to the sign-in page.
        assert_eq!(level(401, 303), Level::DEBUG);
        assert_eq!(level(401, 401), Level::INFO);
        assert_eq!(level(404, 404), Level::INFO);
        assert_eq!(level(422, 422), Level::INFO);
    }
}
