//! The provider kinds' logos: small SVG files (static/logos/) compiled into the binary and served
//! at `/static/logos/{kind}.svg`, public, for the login chooser's buttons and the admin's kind
//! cards alike. They are images (`<img alt="">`, decorative: the text beside them names the
//! provider), so the CSP's `img-src 'self'` covers them and no script in them would ever run.

use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::ops::assets::{Asset, Shelf};
use crate::upstream::ProviderKind;

static LOGOS: Shelf = Shelf::new(
    "/static/logos",
    &[
        svg(
            "google.svg",
            include_bytes!("../../static/logos/google.svg"),
        ),
        svg(
            "github.svg",
            include_bytes!("../../static/logos/github.svg"),
        ),
        svg("oidc.svg", include_bytes!("../../static/logos/oidc.svg")),
        svg("saml.svg", include_bytes!("../../static/logos/saml.svg")),
    ],
);

const fn svg(name: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type: "image/svg+xml",
        body,
    }
}

/// The URL of `kind`'s logo, e.g. `/static/logos/google.svg?v=1a2b3c4d5e6f`.
pub fn url(kind: ProviderKind) -> String {
    LOGOS.url(&format!("{kind}.svg"))
}

#[get("/static/logos/{name}")]
pub async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    match LOGOS.serve(&req, &name) {
        Some(res) => res,
        None => super::web::not_found().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::kinds::KINDS;

    #[test]
    fn every_kind_has_a_logo() {
        for kind in KINDS {
            let url = url(kind.kind());
            assert!(url.contains("?v="), "{url}");
        }
    }
}
