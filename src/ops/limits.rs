//! Request size limits: the request target and the header block.
//!
//! actix-web parses up to 128 KiB of request head and 96 headers; nothing below that would
//! stop a 100 kB `/authorize` query from being parsed, logged and processed. This middleware
//! refuses, before any handler runs, a request target over 8 KiB (414) and a header block over
//! 16 KiB or 64 headers (431).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, http::header};

/// The longest request target (path and query, or absolute URI), in bytes.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// The largest header block: each header counted as `name: value\r\n`.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header lines.
pub const MAX_HEADERS: usize = 64;

/// Why a request is refused, if it is.
pub fn violation(req: &actix_web::HttpRequest) -> Option<StatusCode> {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    if target > MAX_TARGET_BYTES {
        return Some(StatusCode::URI_TOO_LONG);
    }
    let headers = req.headers();
    if headers.len() > MAX_HEADERS {
        return Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (bytes > MAX_HEADER_BYTES).then_some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
}

pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(status) = violation(req.request()) {
        let body = match status {
            StatusCode::URI_TOO_LONG => "request target too long\n",
            _ => "request header fields too large\n",
        };
        let res = HttpResponse::build(status)
            .insert_header((header::CONNECTION, "close"))
            .content_type("text/plain; charset=utf-8")
            .body(body);
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
