//! The admin side of Portico: accounts and sign-in, the web UI under `/admin`, and the JSON API
//! under `/admin/api/v1`.
//!
//! Both faces sit on the same services (`api_tokens`, `keys_admin`, `audit`…): a handler parses its
//! input into a domain value, calls the service with a [`Caller`], and the service makes the change
//! and its audit entry in one transaction.

pub mod accounts;
pub mod api;
pub mod api_tokens;
pub mod assets;
pub mod audit;
pub mod client_page;
pub mod clients_admin;
pub mod clients_api;
pub mod clients_pages;
pub mod csrf;
pub mod dashboard;
pub mod error;
pub mod keys_admin;
pub mod openapi;
pub mod pages;
pub mod pagination;
pub mod providers_admin;
pub mod providers_api;
pub mod providers_discovery;
pub mod providers_input;
pub mod providers_pages;
pub mod session;
pub mod sign_in;
pub mod throttle;
pub mod time;
pub mod users_admin;
pub mod users_api;
pub mod users_pages;
pub mod validation;
pub mod webhooks_admin;
pub mod webhooks_api;
pub mod webhooks_pages;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;

pub use crate::audit::Caller;

/// Mounts the admin UI and API. The API scope comes first: the UI scope would shadow it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            // Admin pages and API answers hold tokens and configuration: never cache them.
            // (DefaultHeaders leaves the static assets' own Cache-Control alone.)
            .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
            .service(api::scope())
            .configure(assets::routes)
            .configure(clients_pages::routes)
            .configure(providers_pages::routes)
            .configure(webhooks_pages::routes)
            .configure(users_pages::routes)
            .configure(pages::routes),
    );
}
