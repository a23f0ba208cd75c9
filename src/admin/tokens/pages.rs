//! The API tokens page: mint (the token shown once), list, revoke.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::ExposeSecret;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, Done, form_status, render, see_other, submit};
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

impl TokensPage {
    async fn new(session: &AdminSession, state: &AppState) -> Result<Self, PageError> {
        Ok(Self {
            chrome: Chrome::new(session, "tokens"),
            tokens: all_tokens(state).await?,
            name: String::new(),
            errors: FieldErrors::new(),
            minted: None,
            notice: None,
        })
    }
}

async fn tokens_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> Result<TokensPage, PageError> {
    let mut page = TokensPage::new(&session, &state).await?;
    page.notice = query.notice(&[("revoked", "The token was revoked.")]);
    Ok(page)
}

async fn mint_token(
    state: web::Data<AppState>,
    form: Protected<NewToken>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let caller = session.caller();
    let minted = submit(form.validate(), async |name| {
        api_tokens::mint(&state.store, &caller, &name).await
    })
    .await?;
    // Listed after minting, so the new token is in the list.
    let mut page = TokensPage::new(&session, &state).await?;
    match minted {
        Ok((info, token)) => page.minted = Some((info.name, token.expose_secret().to_owned())),
        Err(errors) => (page.name, page.errors) = (form.name, errors),
    }
    // The token is in this body only; the /admin scope marks every answer `no-store`.
    render(form_status(&page.errors), &page)
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
