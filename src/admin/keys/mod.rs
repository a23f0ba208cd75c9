//! Signing keys: the published keys and their rotation.

pub mod api;
pub mod pages;
pub mod service;
