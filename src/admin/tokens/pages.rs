//! The API tokens page: mint (the token shown once, on `/admin/tokens/{id}/secret` after the
//! redirect), list, revoke (after asking).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use secrecy::ExposeSecret;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::Protected;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Ask, Chrome, Confirmation, Destructive, Done, asks_first};
use crate::admin::http::pages::{form_status, render, see_other, submit, url_segment};
use crate::admin::http::pagination::PageRequest;
use crate::admin::http::reveal::{self, Link, RevealPage, Secret};
use crate::admin::http::validation::FieldErrors;
use crate::admin::tokens::service::{self as api_tokens, ApiToken, NewToken, TokenError};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(tokens_page))
        .route("/tokens", web::post().to(mint_token))
        .route("/tokens/{id}/secret", web::get().to(reveal_token));
    asks_first::<Revoke>(cfg, "/tokens/{id}/revoke", "/tokens/{id}/revoke");
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
    pub notice: Option<&'static str>,
}

impl TokensPage {
    async fn new(session: &AdminSession, state: &AppState) -> Result<Self, PageError> {
        Ok(Self {
            chrome: Chrome::new(session, "tokens"),
            tokens: all_tokens(state).await?,
            name: String::new(),
            errors: FieldErrors::new(),
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
    let errors = match minted {
        Ok((info, token)) => {
            let minted = (Secret::ApiToken, info.id.as_str());
            let token = token.expose_secret();
            return Ok(reveal::hand_over(
                &state, &session, minted, token, "created",
            ));
        }
        Err(errors) => errors,
    };
    let mut page = TokensPage::new(&session, &state).await?;
    (page.name, page.errors) = (form.name, errors);
    render(form_status(&page.errors), &page)
}

/// `/admin/tokens/{id}/secret`: the token just minted, once; then that it was shown.
async fn reveal_token(
    req: HttpRequest,
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let info = api_tokens::get(&state.store, &id).await?;
    let (secret, removal) = reveal::take(&req, &state, &session, (Secret::ApiToken, &id));
    let page = RevealPage {
        chrome: Chrome::new(&session, "tokens"),
        title: format!("Token “{}” created", info.name),
        secret,
        code_id: "new-token",
        shown: "Copy it now: it is shown only this once. Portico keeps only its digest.",
        notes: vec!["Send it as Authorization: Bearer <token> to /admin/api/v1/….".into()],
        gone: "This token was shown once, right after it was created, and is not shown again: \
               Portico keeps only its digest. If it was not copied, revoke it and create another.",
        renew: Link {
            href: format!("/admin/tokens/{}/revoke", url_segment(&info.id)),
            label: "Revoke it…",
        },
        snippet: None,
        next: Link {
            href: "/admin/tokens".into(),
            label: "All API tokens",
        },
    };
    removal.with(&page)
}

/// Revoking a token.
struct Revoke;

impl Destructive for Revoke {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let t = api_tokens::get(&state.store, id).await?;
        if t.is_revoked() {
            // A second click (another tab) finds it done.
            return Ok(Ask::Done(see_other("/admin/tokens?done=revoked")));
        }
        Ok(Ask::Confirm(Confirmation {
            title: format!("Revoke the API token “{}”?", t.name),
            facts: vec![
                ("Starts with", format!("{}…", t.hint)),
                ("Created by", t.created_by.clone()),
                (
                    "Last used",
                    t.last_used_at.unwrap_or_else(|| "never".into()),
                ),
            ],
            consequences: vec![
                "Every call made with it is refused (403) from now on: automation using it \
                 stops working until it is given a new token."
                    .into(),
                "This cannot be undone.".into(),
            ],
            // A token has no page of its own: back to the list.
            cancel: "/admin/tokens".into(),
            ..Confirmation::about("tokens", id, "revoke", "Revoke token")
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        match api_tokens::revoke(&state.store, &session.caller(), id).await {
            Ok(_) | Err(TokenError::AlreadyRevoked(_)) => {
                Ok(see_other("/admin/tokens?done=revoked"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
