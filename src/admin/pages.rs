//! The admin web UI: server-rendered askama pages that work without JavaScript.
//!
//! Reads are GET pages behind [`AdminSession`]; every change is a POST through
//! [`Protected`], which checks the session's CSRF token before the handler runs.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::api_tokens::{self, ApiToken, NewToken, TokenError};
use super::assets;
use super::audit::{self, AuditEntry, AuditParams};
use super::csrf::{NoFields, Protected};
use super::error::PageError;
use super::keys_admin::{self, KeyInfo};
use super::pagination::{MAX_LIMIT, PageRequest};
use super::session::{self, AdminSession};
use super::sign_in::{self, SignInError};
use super::validation::FieldErrors;
use crate::crypto::random_token;
use crate::ops::client_ip::client_ip_text as peer_ip;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(super::dashboard::dashboard))
        .route("/", web::get().to(super::dashboard::dashboard))
        .route("/sign-in", web::get().to(sign_in_form))
        .route("/sign-in", web::post().to(sign_in_submit))
        .route("/sign-out", web::post().to(sign_out))
        .route("/keys", web::get().to(keys_page))
        .route("/keys/rotate", web::post().to(rotate_keys))
        .route("/audit", web::get().to(audit_page))
        .route("/tokens", web::get().to(tokens_page))
        .route("/tokens", web::post().to(mint_token))
        .route("/tokens/{id}/revoke", web::post().to(revoke_token));
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
pub(super) fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// `?done=<what>`: the redirect after a change says what was done, for the notice on the page.
#[derive(Deserialize)]
pub(super) struct Done {
    pub(super) done: Option<String>,
}

impl Done {
    pub(super) fn is(&self, what: &str) -> bool {
        self.done.as_deref() == Some(what)
    }
}

pub(super) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

// ---- sign-in -------------------------------------------------------------------------------

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

// ---- keys ----------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "admin/keys.html")]
pub struct KeysPage {
    pub chrome: Chrome,
    pub keys: Vec<KeyInfo>,
    pub rotated: bool,
}

async fn keys_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> Result<KeysPage, PageError> {
    Ok(KeysPage {
        chrome: Chrome::new(&session, "keys"),
        keys: keys_admin::all(&state).await?,
        rotated: query.is("rotated"),
    })
}

async fn rotate_keys(
    state: web::Data<AppState>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    keys_admin::rotate(&state.keys, &state.store, &form.session.caller()).await?;
    Ok(see_other("/admin/keys?done=rotated"))
}

// ---- audit log -----------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub filters: AuditParams,
    pub errors: FieldErrors,
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

impl AuditPage {
    pub fn value<'a>(&self, raw: &'a Option<String>) -> &'a str {
        raw.as_deref().unwrap_or_default()
    }

    /// The time range as the form shows it (`since`/`until`, or their older names).
    pub fn since(&self) -> &str {
        self.value(self.filters.since_param().1)
    }

    pub fn until(&self) -> &str {
        self.value(self.filters.until_param().1)
    }

    /// The error for the start of the range, under whichever name the request used.
    pub fn since_error(&self) -> Option<&str> {
        self.errors.get(self.filters.since_param().0)
    }

    pub fn until_error(&self) -> Option<&str> {
        self.errors.get(self.filters.until_param().0)
    }
}

async fn audit_page(
    session: AdminSession,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, PageError> {
    let filters = params.into_inner();
    let mut page = AuditPage {
        chrome: Chrome::new(&session, "audit"),
        filters: filters.clone(),
        errors: FieldErrors::new(),
        entries: Vec::new(),
        next: None,
    };
    match filters.parse() {
        Ok(query) => {
            let found = audit::list(&state.store, &query).await?;
            page.next = found.next_cursor.map(|cursor| {
                let mut next = filters.clone();
                next.cursor = Some(cursor);
                format!("/admin/audit?{}", next.query_string())
            });
            page.entries = found.items;
            render(StatusCode::OK, &page)
        }
        Err(errors) => {
            page.errors = errors;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

// ---- API tokens ----------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    pub chrome: Chrome,
    pub tokens: Vec<ApiToken>,
    pub name: String,
    pub errors: FieldErrors,
    /// The token just minted: shown on this response only.
    pub minted: Option<(String, String)>,
    pub notice: Option<String>,
}

pub(super) async fn all_tokens(state: &AppState) -> Result<Vec<ApiToken>, PageError> {
    let page = PageRequest {
        limit: MAX_LIMIT,
        cursor: None,
    };
    Ok(api_tokens::list(&state.store, &page).await?.items)
}

async fn tokens_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> Result<TokensPage, PageError> {
    Ok(TokensPage {
        chrome: Chrome::new(&session, "tokens"),
        tokens: all_tokens(&state).await?,
        name: String::new(),
        errors: FieldErrors::new(),
        minted: None,
        notice: query
            .is("revoked")
            .then(|| "The token was revoked.".to_owned()),
    })
}

async fn mint_token(
    state: web::Data<AppState>,
    form: Protected<NewToken>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let mut page = TokensPage {
        chrome: Chrome::new(&session, "tokens"),
        tokens: Vec::new(),
        name: form.name.clone(),
        errors: FieldErrors::new(),
        minted: None,
        notice: None,
    };
    let status = match form.validate() {
        Ok(name) => {
            let (info, token) = api_tokens::mint(&state.store, &session.caller(), &name)
                .await
                .map_err(|e| PageError::Internal(e.into()))?;
            page.minted = Some((info.name, token.expose_secret().to_owned()));
            page.name.clear();
            StatusCode::OK
        }
        Err(errors) => {
            page.errors = errors;
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    page.tokens = all_tokens(&state).await?;
    // The token is in this body only; the /admin scope marks every answer `no-store`.
    render(status, &page)
}

async fn revoke_token(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    match api_tokens::revoke(&state.store, &form.session.caller(), &id).await {
        Ok(_) | Err(TokenError::AlreadyRevoked(_)) => Ok(see_other("/admin/tokens?done=revoked")),
        Err(TokenError::NotFound(_)) => Err(PageError::NotFound),
        Err(TokenError::Store(e)) => Err(e.into()),
    }
}
