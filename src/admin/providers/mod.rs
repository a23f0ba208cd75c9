//! Upstream identity providers: the service that changes them with their audit entry, the input
//! both faces parse (each kind's own options come from `upstream::kinds`), the discovery probe,
//! the JSON API and the pages.

pub mod api;
pub mod discovery;
pub mod input;
pub mod pages;
pub mod service;
