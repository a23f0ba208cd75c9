//! Upstream identity providers.

pub mod http;
