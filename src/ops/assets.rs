//! Static files compiled into the binary and served by Portico itself (the CSP allows nothing
//! from elsewhere): the admin UI's stylesheet and scripts, the provider kinds' logos.
//!
//! Pages link a file as `…?v=<digest of the content>`: a request with the current digest may be
//! cached for a year, since any change to the file changes the URL; one without it (an old page,
//! a hand-typed URL) is revalidated by its `ETag`.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// One file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The files served under one path prefix, with their digests computed once.
pub struct Shelf {
    prefix: &'static str,
    assets: &'static [Asset],
    versions: OnceLock<Vec<String>>,
}

impl Shelf {
    /// `prefix` is the path the files are served under (`/admin/static`).
    pub const fn new(prefix: &'static str, assets: &'static [Asset]) -> Self {
        Self {
            prefix,
            assets,
            versions: OnceLock::new(),
        }
    }

    fn find(&self, name: &str) -> Option<(&Asset, &str)> {
        let versions = self.versions.get_or_init(|| {
            self.assets
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
        let index = self.assets.iter().position(|a| a.name == name)?;
        Some((&self.assets[index], &versions[index]))
    }

    /// The URL pages use for a file, e.g. `/admin/static/admin.css?v=1a2b3c4d5e6f`.
    pub fn url(&self, name: &str) -> String {
        match self.find(name) {
            Some((asset, version)) => format!("{}/{}?v={version}", self.prefix, asset.name),
            None => format!("{}/{name}", self.prefix),
        }
    }

    /// The file `name` as asked for by `req` (a 304 when its `If-None-Match` is current);
    /// `None` when there is no such file.
    pub fn serve(&self, req: &HttpRequest, name: &str) -> Option<HttpResponse> {
        let (asset, version) = self.find(name)?;
        let etag = format!("\"{version}\"");
        let cache = if req.query_string() == format!("v={version}") {
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
        Some(if not_modified {
            res.finish()
        } else {
            res.content_type(asset.content_type).body(asset.body)
        })
    }
}
