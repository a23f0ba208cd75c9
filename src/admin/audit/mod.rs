//! The audit log as admins read it.

pub mod api;
pub mod pages;
pub mod service;
