//! Security headers on every response.

use actix_web::middleware::DefaultHeaders;

/// Pages are served from Portico itself with no inline scripts and never framed.
const CSP: &str = "default-src 'self'; img-src 'self' data: https:; style-src 'self'; \
                   script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"));
    if https {
        headers.add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}
