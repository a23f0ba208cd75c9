//! The admin UI's stylesheet and scripts, compiled into the binary and served under
//! `/admin/static/` with digest-versioned URLs (`ops::assets`).

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::admin::http::error::PageError;
use crate::ops::assets::{Asset, Shelf};

static ASSETS: Shelf = Shelf::new(
    "/admin/static",
    &[
        Asset {
            name: "admin.css",
            content_type: "text/css; charset=utf-8",
            body: include_bytes!("../../../static/admin.css"),
        },
        Asset {
            name: "copy.js",
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!("../../../static/copy.js"),
        },
        Asset {
            name: "provider-form.js",
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!("../../../static/provider-form.js"),
        },
    ],
);

/// The URL pages use for an asset, e.g. `/admin/static/admin.css?v=1a2b3c4d5e6f`.
pub fn url(name: &str) -> String {
    ASSETS.url(name)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{name}", web::get().to(serve));
}

async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    ASSETS
        .serve(&req, &name)
        .unwrap_or_else(|| PageError::NotFound.error_response())
}
