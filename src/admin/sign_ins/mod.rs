//! Sign-in events: the logins that succeeded and failed, read from the `login.succeeded` and
//! `login.failed` events (`webhooks::events` owns the table), for an admin looking into why
//! someone could not sign in.

pub mod api;
pub mod pages;
pub mod service;
