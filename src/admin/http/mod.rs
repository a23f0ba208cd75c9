//! What every admin resource's API and pages share: the API scope and its caller, the page
//! chrome, confirmations, secrets shown once, CSRF, errors, keyset pagination, field validation,
//! time formats and static assets.

pub mod api;
pub mod assets;
pub mod csrf;
pub mod error;
pub mod pages;
pub mod pagination;
pub mod reveal;
pub mod time;
pub mod validation;
