//! The sign-in page (with the bootstrap hint when no admin exists) and sign-out.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::admin::auth::session::{self};
use crate::admin::auth::sign_in::{self, SignInError};
use crate::admin::http::assets;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::render;
use crate::crypto::random_token;
use crate::ops::client_ip::client_ip_text as peer_ip;
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
}

impl SignInPage {
    fn new(csrf: String, email: String, error: Option<String>) -> Self {
        Self {
            csrf,
            email,
            error,
            css: assets::url("admin.css"),
        }
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
    let page = SignInPage::new(token.clone(), String::new(), None);
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
            let page = SignInPage::new(cookie, form.email.trim().to_owned(), Some(err.to_string()));
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
