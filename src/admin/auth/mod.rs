//! The admins themselves: their accounts, sign-in (throttled, rate-limited) and the session
//! cookie of the admin UI.

pub mod accounts;
pub mod pages;
pub mod session;
pub mod sign_in;
pub mod throttle;
