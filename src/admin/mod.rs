//! The admin side of Portico: accounts and sign-in, the web UI under `/admin`, and the JSON API
//! under `/admin/api/v1`.
//!
//! Both faces sit on the same services (`api_tokens`, `keys_admin`, `audit`…): a handler parses its
//! input into a domain value, calls the service with a [`Caller`], and the service makes the change
//! and its audit entry in one transaction.

pub mod audit;
pub mod auth;
pub mod clients;
pub mod dashboard;
pub mod guides;
pub mod http;
pub mod keys;
pub mod openapi;
pub mod providers;
pub mod sign_ins;
pub mod tokens;
pub mod users;
pub mod webhooks;

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
            .service(http::api::scope())
            .configure(http::assets::routes)
            .configure(clients::pages::routes)
            .configure(providers::pages::routes)
            .configure(guides::routes)
            .configure(webhooks::pages::routes)
            .configure(users::pages::routes)
            .configure(sign_ins::pages::routes)
            .configure(http::pages::routes)
            .default_service(web::to(http::pages::not_found)),
    );
}
