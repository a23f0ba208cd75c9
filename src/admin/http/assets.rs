//! The admin UI's stylesheet and script, compiled into the binary and served by Portico itself
//! (the CSP allows nothing from elsewhere).
//!
//! Pages link them as `…?v=<digest of the content>`: a request with the current digest may be
//! cached for a year, since any change to the file changes the URL.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::admin::http::error::PageError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
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
];

fn version(asset: &Asset) -> &'static str {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = ring::digest::digest(&ring::digest::SHA256, a.body);
                digest.as_ref()[..6]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
            .collect()
    });
    let index = ASSETS
        .iter()
        .position(|a| a.name == asset.name)
        .expect("a known asset");
    &versions[index]
}

/// The URL pages use for an asset, e.g. `/admin/static/admin.css?v=1a2b3c4d5e6f`.
pub fn url(name: &str) -> String {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => format!("/admin/static/{}?v={}", asset.name, version(asset)),
        None => format!("/admin/static/{name}"),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{name}", web::get().to(serve));
}

async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name.as_str()) else {
        return PageError::NotFound.error_response();
    };
    let etag = format!("\"{}\"", version(asset));
    let current = req.query_string() == format!("v={}", version(asset));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut res = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag));
    if not_modified {
        res.finish()
    } else {
        res.content_type(asset.content_type).body(asset.body)
    }
}
