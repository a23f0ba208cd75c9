//! Browser-facing pages: the one error page every browser flow uses, the login chooser, the
//! signed-out page, and Portico's stylesheet (the providers' logos are in [`super::logos`]).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, get};
use askama::Template;

use super::branding::Brand;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    brand: Brand,
    title: &'a str,
    message: &'a str,
    /// A link back to the application, carrying the OAuth error for it.
    back: Option<&'a str>,
    /// The request's id (as in `x-request-id` and the logs), for the user to quote.
    request_id: Option<String>,
}

/// The HTML error page, with `status`. Never a redirect: used when the client cannot be
/// trusted with the error (unknown client or redirect URI) or there is no client to tell.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render_error(status, title, message, None)
}

/// The HTML error page of a sign-in that failed after the client was verified: it tells the
/// user what happened and offers `back`, the client's redirect URI with the OAuth error, so
/// the application learns the outcome when the user returns to it.
pub fn error_page_with_way_back(
    status: StatusCode,
    title: &str,
    message: &str,
    back: &str,
) -> HttpResponse {
    render_error(status, title, message, Some(back))
}

fn render_error(
    status: StatusCode,
    title: &str,
    message: &str,
    back: Option<&str>,
) -> HttpResponse {
    let page = ErrorPage {
        brand: Brand::current(),
        title,
        message,
        back,
        request_id: crate::ops::request_id::current(),
    };
    render(status, &page)
}

/// Any path nothing serves: a small page rather than an empty answer.
pub async fn not_found() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
}

/// A provider on the chooser: a button with its kind's logo, and the e-mail domains it serves
/// under it (the home-realm hint, `email_domains`), so users see which one is theirs.
pub struct ProviderChoice {
    pub id: String,
    pub name: String,
    /// Its kind's logo ([`super::logos`]).
    pub logo: String,
    pub domains: Vec<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub brand: Brand,
    pub client_name: String,
    pub request_id: String,
    pub providers: Vec<ProviderChoice>,
    pub show_email: bool,
    pub email: String,
    pub note: Option<String>,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage {
    pub brand: Brand,
}

/// After a user added upstream scopes a service asked for (`super::connect`), when the service
/// named no return URI.
#[derive(Template)]
#[template(path = "scopes_granted.html")]
pub struct ScopesGrantedPage {
    pub brand: Brand,
    pub client_name: String,
    pub provider_name: String,
    /// Requested scopes the provider's answer left out (the user unticked them there).
    pub not_granted: Vec<String>,
}

pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[get("/static/portico.css")]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(include_str!("../../static/portico.css"))
}
