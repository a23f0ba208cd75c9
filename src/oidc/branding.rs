//! The deployment's branding on the pages users see: product name, logo and accent colour
//! from `[branding]`.
//!
//! Pages are rendered from many places (every browser-flow error path), so rather than thread
//! the branding through each call, a middleware runs every request inside a task-local scope
//! holding it, and page structs take [`Brand::current`]. Outside a request (unit tests) the
//! defaults apply. The colour reaches the pages as `/branding.css`, because the CSP allows no
//! inline styles.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, web};
use anyhow::{Context, bail};

use crate::config::BrandingSettings;

const MAX_LOGO_BYTES: u64 = 256 * 1024;
const LOGO_PATH: &str = "/branding/logo";

tokio::task_local! {
    static CURRENT: Arc<Branding>;
}

/// Branding, prepared once at start.
#[derive(Debug)]
pub struct Branding {
    product_name: String,
    /// Where pages load the logo from.
    logo_src: Option<String>,
    /// The logo file's bytes and content type, when it is served from here.
    logo: Option<(&'static str, Bytes)>,
    css: Bytes,
}

impl Default for Branding {
    fn default() -> Self {
        Self::new(&BrandingSettings::default(), None)
    }
}

impl Branding {
    /// Checks the settings (again: tests and embedders build settings by hand) and reads the
    /// logo file, if any.
    pub fn load(settings: &BrandingSettings) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let logo = match &settings.logo_file {
            None => None,
            Some(path) => {
                let content_type = match path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    Some("png") => "image/png",
                    Some("svg") => "image/svg+xml",
                    Some("jpg" | "jpeg") => "image/jpeg",
                    Some("webp") => "image/webp",
                    _ => bail!(
                        "branding.logo_file {} must be a .png, .svg, .jpg or .webp file",
                        path.display()
                    ),
                };
                let size = std::fs::metadata(path)
                    .with_context(|| format!("branding.logo_file {}", path.display()))?
                    .len();
                if size > MAX_LOGO_BYTES {
                    bail!(
                        "branding.logo_file {} is {size} bytes; at most {MAX_LOGO_BYTES} are allowed",
                        path.display()
                    );
                }
                let bytes = std::fs::read(path)
                    .with_context(|| format!("branding.logo_file {}", path.display()))?;
                Some((content_type, Bytes::from(bytes)))
            }
        };
        Ok(Self::new(settings, logo))
    }

    fn new(settings: &BrandingSettings, logo: Option<(&'static str, Bytes)>) -> Self {
        let logo_src = match (&logo, &settings.logo_url) {
            (Some(_), _) => Some(LOGO_PATH.to_owned()),
            (None, url) => url.clone(),
        };
        // The colour was validated as #rrggbb, so it cannot break out of the declaration.
        let css = format!(":root {{ --accent: {}; }}\n", settings.accent_color);
        Self {
            product_name: settings.product_name.trim().to_owned(),
            logo_src,
            logo,
            css: Bytes::from(css),
        }
    }

    /// Runs `fut` (a request) with this branding as the current one.
    pub async fn scope<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

/// What a page template reads: `{{ brand.name() }}`, `brand.logo()`.
#[derive(Debug, Clone)]
pub struct Brand(Arc<Branding>);

impl Brand {
    /// The branding of the request being served (the defaults outside one).
    pub fn current() -> Self {
        Brand(
            CURRENT
                .try_with(Arc::clone)
                .unwrap_or_else(|_| Arc::new(Branding::default())),
        )
    }

    pub fn name(&self) -> &str {
        &self.0.product_name
    }

    pub fn logo(&self) -> Option<&str> {
        self.0.logo_src.as_deref()
    }
}

#[get("/branding.css")]
pub async fn serve_stylesheet(branding: web::Data<Branding>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(branding.css.clone())
}

#[get("/branding/logo")]
pub async fn serve_logo(branding: web::Data<Branding>) -> HttpResponse {
    match &branding.logo {
        Some((content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            // An SVG opened on its own must not run script.
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ))
            .body(bytes.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_outside_a_request_get_the_defaults_and_inside_the_scope_the_brand() {
        assert_eq!(Brand::current().name(), "Portico");
        let settings = BrandingSettings {
            product_name: "Acme ID".into(),
            logo_url: Some("https://cdn.acme.example/logo.svg".into()),
            accent_color: "#aa0000".into(),
            ..BrandingSettings::default()
        };
        let branding = Arc::new(Branding::load(&settings).unwrap());
        let (name, logo) = branding
            .scope(async {
                let b = Brand::current();
                (b.name().to_owned(), b.logo().map(str::to_owned))
            })
            .await;
        assert_eq!(name, "Acme ID");
        assert_eq!(logo.as_deref(), Some("https://cdn.acme.example/logo.svg"));
    }

    #[test]
    fn a_logo_file_must_be_an_image_of_bounded_size() {
        let dir = std::env::temp_dir().join(format!("portico-logo-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("logo.exe");
        std::fs::write(&bad, b"MZ").unwrap();
        let settings = BrandingSettings {
            logo_file: Some(bad),
            ..BrandingSettings::default()
        };
        assert!(Branding::load(&settings).is_err());
        let big = dir.join("logo.png");
        std::fs::write(&big, vec![0u8; (MAX_LOGO_BYTES + 1) as usize]).unwrap();
        let settings = BrandingSettings {
            logo_file: Some(big),
            ..BrandingSettings::default()
        };
        assert!(Branding::load(&settings).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
