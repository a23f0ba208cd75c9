//! The admin web UI: server-rendered askama pages that work without JavaScript.
//!
//! Reads are GET pages behind [`AdminSession`]; every change is a POST through
//! [`Protected`], which checks the session's CSRF token before the handler runs.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::assets;
use crate::admin::http::error::PageError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(crate::admin::dashboard::dashboard))
        .route("/", web::get().to(crate::admin::dashboard::dashboard))
        .configure(crate::admin::auth::pages::routes)
        .configure(crate::admin::keys::pages::routes)
        .configure(crate::admin::audit::pages::routes)
        .configure(crate::admin::tokens::pages::routes);
}

/// What the layout around every signed-in page needs.
pub struct Chrome {
    pub email: String,
    pub csrf: String,
    /// The nav entry to highlight.
    pub active: &'static str,
    pub css: String,
    pub js: String,
}

impl Chrome {
    pub fn new(session: &AdminSession, active: &'static str) -> Self {
        Self {
            email: session.admin.email.clone(),
            csrf: session.csrf.clone(),
            active,
            css: assets::url("admin.css"),
            js: assets::url("copy.js"),
        }
    }
}

/// Renders a page with a status other than 200.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// `?done=<what>`: the redirect after a change says what was done, for the notice on the page.
#[derive(Deserialize)]
pub(crate) struct Done {
    pub(crate) done: Option<String>,
}

impl Done {
    pub(crate) fn is(&self, what: &str) -> bool {
        self.done.as_deref() == Some(what)
    }
}

pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// An id as one URL path segment: a link built from it cannot break out of its segment.
pub fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
