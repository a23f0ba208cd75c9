//! Admin API tokens: minted (shown once), listed, revoked.

pub mod api;
pub mod pages;
pub mod service;
