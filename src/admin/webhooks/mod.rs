//! Webhook endpoints: the audited service every change goes through (the delivery machinery
//! itself is `crate::webhooks`), the JSON API and the pages, with each endpoint's delivery log
//! and replay.

pub mod api;
pub mod pages;
pub mod service;
