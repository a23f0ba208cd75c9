//! The sign-in page (with the bootstrap hint when no admin exists) and sign-out.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::admin::auth::accounts;
use crate::admin::auth::session::{self};
use crate::admin::auth::sign_in::{self, SignInError};
use crate::admin::http::assets;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::render;
use crate::config::Settings;
use crate::crypto::random_token;
use crate::ops::client_ip::{client_ip, client_ip_text as peer_ip};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sign-in", web::get().to(sign_in_form))
        .route("/sign-in", web::post().to(sign_in_submit))
        .route("/sign-out", web::post().to(sign_out));
}

/// Before there is a session, the sign-in form is guarded by a double-submit token: a cookie
/// only this site can set, echoed in a hidden field.
const SIGN_IN_COOKIE: &str = "portico_admin_sign_in";

fn sign_in_cookie(value: &str, https: bool) -> Cookie<'static> {
    Cookie::build(SIGN_IN_COOKIE, value.to_owned())
        .path("/admin/sign-in")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .finish()
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/sign_in.html")]
pub struct SignInPage {
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    pub css: String,
    /// While no admin exists: how to create the first one.
    pub first_admin: Option<FirstAdmin>,
}

impl SignInPage {
    async fn new(
        req: &HttpRequest,
        state: &AppState,
        csrf: String,
        email: String,
        error: Option<String>,
    ) -> Result<Self, PageError> {
        // Where the database is (a path, a host, a user name) is for the server's own machine.
        let local = client_ip(req).is_some_and(|ip| ip.is_loopback());
        let first_admin = match accounts::any_exists(&state.store).await? {
            true => None,
            false => Some(FirstAdmin::new(&state.settings, local)),
        };
        Ok(Self {
            csrf,
            email,
            error,
            css: assets::url("admin.css"),
            first_admin,
        })
    }
}

/// The hint on a fresh instance's sign-in page. The first admin is made on the server's
/// command line, never through the web: a setup form would let whoever reaches the port first
/// take the instance over.
pub struct FirstAdmin {
    /// `portico admin create …`, pointed at this server's database when it is not the default.
    pub command: String,
    /// Whether the command works only in the directory the server was started from.
    pub run_in_server_dir: bool,
    /// Whether the database's location is left out (for a visitor from another machine).
    pub location_hidden: bool,
    /// Whether the database URL has a password the command leaves out.
    pub password_left_out: bool,
    pub min_password_chars: usize,
}

impl FirstAdmin {
    /// `local`: the visitor is on the server's machine, and may see where its database is.
    pub fn new(settings: &Settings, local: bool) -> Self {
        let base = "portico admin create --email you@example.com";
        let env = settings.database_env().filter(|_| local);
        let url = settings.database_url();
        Self {
            command: match &env {
                Some((var, value)) => format!("{var}={} {base}", shell_word(value)),
                None => base.to_owned(),
            },
            run_in_server_dir: env.is_none() && local,
            location_hidden: !local,
            password_left_out: local && url.without_password() != url.expose(),
            min_password_chars: accounts::MIN_PASSWORD_CHARS,
        }
    }
}

/// `value` as one POSIX shell word: as it is when that is safe, else in single quotes.
fn shell_word(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

async fn sign_in_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let https = state.settings.server.issuer.is_https();
    let token = match req.cookie(SIGN_IN_COOKIE) {
        Some(c) if !c.value().is_empty() => c.value().to_owned(),
        _ => random_token("").expose_secret().to_owned(),
    };
    let page = SignInPage::new(&req, &state, token.clone(), String::new(), None).await?;
    Ok(HttpResponse::Ok()
        .cookie(sign_in_cookie(&token, https))
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn sign_in_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let https = state.settings.server.issuer.is_https();
    let form = form.into_inner();
    let cookie = req
        .cookie(SIGN_IN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let matches = !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(form.csrf.as_bytes()));
    if !matches {
        return Err(PageError::Csrf);
    }
    let ip = peer_ip(&req);
    match sign_in::sign_in(
        &state,
        &form.email,
        SecretString::from(form.password),
        ip.as_deref(),
    )
    .await
    {
        Ok((_admin, token)) => {
            let mut gone = sign_in_cookie("", https);
            gone.make_removal();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/admin"))
                .cookie(session::cookie(&token, https))
                .cookie(gone)
                .finish())
        }
        Err(SignInError::Internal(e)) => Err(PageError::Internal(e)),
        Err(err) => {
            let status = match err {
                SignInError::Invalid => StatusCode::UNAUTHORIZED,
                _ => StatusCode::TOO_MANY_REQUESTS,
            };
            let email = form.email.trim().to_owned();
            let page = SignInPage::new(&req, &state, cookie, email, Some(err.to_string())).await?;
            render(status, &page)
        }
    }
}

async fn sign_out(
    state: web::Data<AppState>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    form.session.end(&state.store).await?;
    let https = state.settings.server.issuer.is_https();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/sign-in"))
        .cookie(session::removal_cookie(https))
        .finish())
}
