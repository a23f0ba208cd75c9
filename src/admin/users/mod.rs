//! Users: search, a user with its identities, disable/enable, "sign out everywhere".

pub mod api;
pub mod pages;
pub mod service;
