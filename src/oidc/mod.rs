//! The OpenID Connect provider that downstream apps talk to.

pub mod account;
pub mod authorize;
pub mod branding;
pub mod broker;
pub mod callback;
pub mod client_auth;
pub mod complete;
pub mod connect;
pub mod discovery;
pub mod error;
pub mod jwks;
pub mod liveness;
pub mod login;
pub mod logos;
pub mod logout;
pub mod resource;
pub mod revoke;
pub mod saml;
pub mod scope;
pub mod session;
pub mod session_limit;
pub mod token;
pub mod tokens;
pub mod userinfo;
pub mod web;

use actix_web::web as actix;

/// The provider's routes.
pub fn routes(cfg: &mut actix::ServiceConfig) {
    cfg.service(authorize::authorize)
        .service(account::account_page)
        .service(account::connect)
        .service(account::disconnect)
        .service(account::confirm_page)
        .service(account::confirm)
        .service(login::login_page)
        .service(callback::callback)
        .service(token::token_endpoint)
        .service(
            actix::resource("/userinfo")
                .route(actix::get().to(userinfo::userinfo))
                .route(actix::post().to(userinfo::userinfo)),
        )
        .service(revoke::revoke)
        .service(revoke::introspect)
        .service(logout::logout)
        .service(logout::confirm)
        .service(web::stylesheet)
        .service(logos::serve)
        .service(branding::serve_stylesheet)
        .service(branding::serve_logo)
        .configure(saml::routes);
}
