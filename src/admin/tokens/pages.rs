//! The API tokens page: mint (the token shown once), list, revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::ExposeSecret;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, Done, render, see_other};
use crate::admin::http::pagination::PageRequest;
use crate::admin::http::validation::FieldErrors;
use crate::admin::tokens::service::{self as api_tokens, ApiToken, NewToken, TokenError};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(tokens_page))
        .route("/tokens", web::post().to(mint_token))
        .route("/tokens/{id}/revoke", web::post().to(revoke_token));
}

pub(crate) async fn all_tokens(state: &AppState) -> Result<Vec<ApiToken>, PageError> {
    Ok(api_tokens::list(&state.store, &PageRequest::FIRST_LARGEST)
        .await?
        .items)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    pub chrome: Chrome,
    pub tokens: Vec<ApiToken>,
    pub name: String,
    pub errors: FieldErrors,
    /// The token just minted: shown on this response only.
    pub minted: Option<(String, String)>,
    pub notice: Option<&'static str>,
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
        notice: query.notice(&[("revoked", "The token was revoked.")]),
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
            let (info, token) = api_tokens::mint(&state.store, &session.caller(), &name).await?;
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
        Err(e) => Err(e.into()),
    }
}
