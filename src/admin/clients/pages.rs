//! `/admin/clients`: the clients page. It lists clients, creates one (its secret shown once,
//! with a ready-to-paste snippet), rotates secrets and deletes; config-managed clients are
//! read-only. It calls the same service as the API. Editing is on the client's own page
//! (`client_page.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::admin::auth::session::AdminSession;
use crate::admin::clients::service::{
    self as clients_admin, ClientInput, ClientView, ClientWithSecret,
};
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, Done, form_status, render, see_other, submit};
use crate::admin::http::validation::FieldErrors;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clients", web::get().to(clients_page))
        .route("/clients", web::post().to(create_client))
        .route(
            "/clients/{id}",
            web::get().to(crate::admin::clients::page::client_page),
        )
        .route(
            "/clients/{id}",
            web::post().to(crate::admin::clients::page::update_client),
        )
        .route("/clients/{id}/secret", web::post().to(rotate_secret))
        .route("/clients/{id}/delete", web::post().to(delete_client));
}

/// The create form: lists are one item per line or separated by spaces.
#[derive(Debug, Default, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    client_type: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    grant_types: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    allowed_providers: String,
    #[serde(default)]
    allowed_resources: String,
}

/// A list as typed in a text field: one item per line or separated by spaces.
pub(super) fn words(raw: &str) -> Vec<String> {
    raw.split_whitespace().map(str::to_owned).collect()
}

impl ClientForm {
    fn input(&self) -> ClientInput {
        ClientInput {
            client_id: Some(self.client_id.clone()),
            name: self.name.clone(),
            client_type: Some(self.client_type.clone()).filter(|t| !t.is_empty()),
            redirect_uris: words(&self.redirect_uris),
            post_logout_redirect_uris: words(&self.post_logout_redirect_uris),
            grant_types: Some(words(&self.grant_types)).filter(|g| !g.is_empty()),
            scopes: Some(words(&self.scopes)).filter(|s| !s.is_empty()),
            allowed_providers: words(&self.allowed_providers),
            allowed_resources: words(&self.allowed_resources),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/clients.html")]
pub struct ClientsPage {
    chrome: Chrome,
    clients: Vec<ClientView>,
    form: ClientForm,
    errors: FieldErrors,
    /// A client with its secret, right after creation or rotation: shown this once.
    revealed: Option<ClientWithSecret>,
    notice: Option<&'static str>,
}

/// A form field: name, label, value, hint.
type Field = (&'static str, &'static str, String, &'static str);

impl ClientsPage {
    fn fields(&self) -> Vec<Field> {
        let f = &self.form;
        vec![
            (
                "client_id",
                "Client ID",
                f.client_id.clone(),
                "visible ASCII, e.g. wiki",
            ),
            ("name", "Name", f.name.clone(), ""),
            (
                "type",
                "Type",
                f.client_type.clone(),
                "confidential (default) or public",
            ),
            (
                "redirect_uris",
                "Redirect URIs",
                f.redirect_uris.clone(),
                "one per line: https, or http on 127.0.0.1",
            ),
            (
                "post_logout_redirect_uris",
                "Post-logout redirect URIs",
                f.post_logout_redirect_uris.clone(),
                "one per line",
            ),
            (
                "grant_types",
                "Grant types",
                f.grant_types.clone(),
                "authorization_code refresh_token client_credentials",
            ),
            ("scopes", "Scopes", f.scopes.clone(), "separated by spaces"),
            (
                "allowed_providers",
                "Allowed providers",
                f.allowed_providers.clone(),
                "provider ids; empty: all",
            ),
            (
                "allowed_resources",
                "Allowed resources",
                f.allowed_resources.clone(),
                "API URIs its tokens may name as audience (RFC 8707); empty: none",
            ),
        ]
    }

    async fn new(session: &AdminSession, state: &AppState) -> Result<Self, PageError> {
        Ok(Self {
            chrome: Chrome::new(session, "clients"),
            clients: clients_admin::all(state).await?,
            form: ClientForm {
                grant_types: "authorization_code refresh_token".into(),
                scopes: crate::clients::DEFAULT_SCOPES.join(" "),
                ..ClientForm::default()
            },
            errors: FieldErrors::new(),
            revealed: None,
            notice: None,
        })
    }
}

async fn clients_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> Result<ClientsPage, PageError> {
    let mut page = ClientsPage::new(&session, &state).await?;
    page.notice = query.notice(&[("deleted", "The client was deleted.")]);
    Ok(page)
}

async fn create_client(
    state: web::Data<AppState>,
    form: Protected<ClientForm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let caller = session.caller();
    let input = form.input().validate(None);
    let result = submit(input, async |new| {
        clients_admin::create(&state, &caller, &new).await
    })
    .await?;
    let mut page = ClientsPage::new(&session, &state).await?;
    match result {
        Ok(created) => page.revealed = Some(created),
        Err(errors) => (page.form, page.errors) = (form, errors),
    }
    render(form_status(&page.errors), &page)
}

async fn rotate_secret(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    let session = form.session;
    let rotated = clients_admin::rotate_secret(&state, &session.caller(), &id).await?;
    let mut page = ClientsPage::new(&session, &state).await?;
    page.revealed = Some(rotated);
    render(StatusCode::OK, &page)
}

async fn delete_client(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    clients_admin::delete(&state, &form.session.caller(), &id).await?;
    Ok(see_other("/admin/clients?done=deleted"))
}
