//! `/admin/clients/{id}`: one client. Its facts, the ready-to-paste configuration (issuer and
//! client id; the secret is only ever shown on creation or rotation), and the edit form for what
//! `PUT /admin/api/v1/clients/{id}` may change, through the same validation and service.
//! Config-managed clients are shown read-only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::auth::session::AdminSession;
use crate::admin::clients::form::{ClientForm, ClientValues};
use crate::admin::clients::pages::editable;
use crate::admin::clients::service::{self as clients_admin, ClientView};
use crate::admin::clients::snippets::{self, SECRET_ENV, Snippet};
use crate::admin::clients::try_login::{self, Readiness};
use crate::admin::http::csrf::Protected;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, Done, Pairs, back_to, render, submit};
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "admin/client.html")]
pub struct ClientPage {
    chrome: Chrome,
    client: ClientView,
    form: ClientForm,
    notice: Option<&'static str>,
    /// The plain configuration block.
    snippet_lines: Vec<(&'static str, String)>,
    /// One per framework.
    snippets: Vec<Snippet>,
    /// Whether "Try a login" can run, and how.
    try_login: Readiness,
    /// Portico's test callback URI.
    test_callback: String,
}

impl ClientPage {
    async fn new(
        session: &AdminSession,
        state: &AppState,
        client: ClientView,
        values: ClientValues,
    ) -> Result<Self, PageError> {
        let form = ClientForm::new(&state.store, values, &client.allowed_providers, false).await?;
        let issuer = state.settings.server.issuer.as_str().to_owned();
        Ok(Self {
            chrome: Chrome::new(session, "clients"),
            snippet_lines: snippets::config_lines(&issuer, &client),
            snippets: snippets::for_client(&issuer, &client),
            try_login: try_login::readiness(state, &client),
            test_callback: try_login::callback_uri(state),
            client,
            form,
            notice: None,
        })
    }

    /// The configuration snippet never holds a secret here.
    pub fn no_secret(&self) -> Option<&str> {
        None
    }

    /// The environment variable the snippets read the secret from.
    pub fn secret_env(&self) -> &'static str {
        SECRET_ENV
    }
}

pub(super) async fn client_page(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<ClientPage, PageError> {
    let client = clients_admin::get(&state, &id).await?;
    let values = ClientValues::of(&client);
    let mut page = ClientPage::new(&session, &state, client, values).await?;
    page.notice = query.notice(&[
        ("created", "The client was created."),
        ("updated", "The client was saved."),
        (
            "callback-added",
            "Portico's test callback was added to the redirect URIs: try a login now.",
        ),
    ]);
    Ok(page)
}

pub(super) async fn update_client(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<Pairs>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let client = editable(&state, &id).await?;
    let mut values = ClientValues::posted(&form);
    // The type is the stored one: it never changes.
    values.client_type = client.client_type.clone();
    let input = values.input().validate(Some(&client));
    let caller = session.caller();
    let saved = submit(input, async |new| {
        clients_admin::update(&state, &caller, &new).await
    })
    .await?;
    let errors = match saved {
        Ok(saved) => return Ok(back_to("/admin/clients", &saved.client_id, "updated")),
        Err(errors) => errors,
    };
    let mut page = ClientPage::new(&session, &state, client, values).await?;
    page.form.errors = errors;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
