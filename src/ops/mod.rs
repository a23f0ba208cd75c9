//! Operating Portico: health checks, Prometheus metrics, response hardening, compiled-in static
//! files.

pub mod assets;
pub mod bearer;
pub mod client_ip;
pub mod headers;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod ratelimit;
pub mod request_id;
pub mod root_span;
