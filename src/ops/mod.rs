//! Operating Portico: health checks, Prometheus metrics, response hardening.

pub mod headers;
pub mod health;
pub mod limits;
pub mod metrics;
