//! `/admin/clients`: the clients page. It lists clients and creates one; its secret is shown
//! once, with a ready-to-paste snippet, on the client's reveal page `/admin/clients/{id}/secret`
//! after the redirect. Rotating the secret and deleting ask first (`…/secret/rotate`,
//! `…/delete`); config-managed clients are read-only. It calls the same service as the API.
//! Editing is on the client's own page (`page.rs`).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::auth::session::AdminSession;
use crate::admin::clients::form::{ClientForm, ClientValues};
use crate::admin::clients::service::{self as clients_admin, ClientView};
use crate::admin::clients::snippets;
use crate::admin::http::csrf::Protected;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Ask, Chrome, Confirmation, Destructive, Done, Pairs, asks_first};
use crate::admin::http::pages::{back_to, form_status, render, see_other, submit, url_segment};
use crate::admin::http::reveal::{self, Link, RevealPage, Secret};
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
        .route("/clients/{id}/secret", web::get().to(reveal_secret))
        .configure(crate::admin::clients::try_login::routes);
    asks_first::<RotateSecret>(cfg, "/clients/{id}/secret/rotate", "/clients/{id}/secret");
    asks_first::<DeleteClient>(cfg, "/clients/{id}/delete", "/clients/{id}/delete");
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/clients.html")]
pub struct ClientsPage {
    chrome: Chrome,
    clients: Vec<ClientView>,
    form: ClientForm,
    notice: Option<&'static str>,
}

impl ClientsPage {
    async fn new(
        session: &AdminSession,
        state: &AppState,
        values: ClientValues,
    ) -> Result<Self, PageError> {
        Ok(Self {
            chrome: Chrome::new(session, "clients"),
            clients: clients_admin::all(state).await?,
            form: ClientForm::new(&state.store, values, &[], true).await?,
            notice: None,
        })
    }
}

async fn clients_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> Result<ClientsPage, PageError> {
    let mut page = ClientsPage::new(&session, &state, ClientValues::new_client()).await?;
    page.notice = query.notice(&[("deleted", "The client was deleted.")]);
    Ok(page)
}

async fn create_client(
    state: web::Data<AppState>,
    form: Protected<Pairs>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let caller = session.caller();
    let values = ClientValues::posted(&form);
    let input = values.input().validate(None);
    let result = submit(input, async |new| {
        clients_admin::create(&state, &caller, &new).await
    })
    .await?;
    let errors = match result {
        Ok(created) => {
            let id = created.client.client_id.as_str();
            return Ok(match created.client_secret {
                Some(secret) => {
                    reveal::hand_over(&state, &session, (Secret::Client, id), &secret, "created")
                }
                None => back_to("/admin/clients", id, "created"),
            });
        }
        Err(errors) => errors,
    };
    let mut page = ClientsPage::new(&session, &state, values).await?;
    page.form.errors = errors;
    render(form_status(&page.form.errors), &page)
}

/// The client, if it may be changed here: one from portico.toml is changed there.
pub(super) async fn editable(state: &AppState, id: &str) -> Result<ClientView, PageError> {
    let client = clients_admin::get(state, id).await?;
    if client.managed_by_config {
        return Err(PageError::BadRequest(
            "this client is declared in portico.toml; change it there".into(),
        ));
    }
    Ok(client)
}

/// The client, if it has a secret to rotate here.
async fn confidential(state: &AppState, id: &str) -> Result<ClientView, PageError> {
    let client = editable(state, id).await?;
    if client.client_type != "confidential" {
        return Err(PageError::BadRequest(
            "a public client has no secret".into(),
        ));
    }
    Ok(client)
}

fn facts(c: &ClientView) -> Vec<(&'static str, String)> {
    vec![
        ("Client ID", c.client_id.clone()),
        ("Type", c.client_type.clone()),
    ]
}

/// Rotating a client's secret: `…/secret/rotate` asks, `POST …/secret` rotates and hands the
/// new secret to the client's reveal page.
struct RotateSecret;

impl Destructive for RotateSecret {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let c = confidential(state, id).await?;
        Ok(Ask::Confirm(Confirmation {
            title: format!("Rotate the secret of the client “{}”?", c.name),
            consequences: vec![
                "The current secret stops working now: applications using it fail to get \
                 tokens (invalid_client) until they are updated with the new secret."
                    .into(),
                "The new secret is shown once, on the next page; Portico keeps only its digest."
                    .into(),
            ],
            facts: facts(&c),
            ..Confirmation::about("clients", id, "secret", "Rotate secret")
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        let rotated = clients_admin::rotate_secret(state, &session.caller(), id).await?;
        let secret = rotated.client_secret.unwrap_or_default();
        let client = (Secret::Client, id);
        Ok(reveal::hand_over(
            state, session, client, &secret, "rotated",
        ))
    }
}

/// Deleting a client.
struct DeleteClient;

impl Destructive for DeleteClient {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let c = editable(state, id).await?;
        Ok(Ask::Confirm(Confirmation {
            title: format!("Delete the client “{}”?", c.name),
            consequences: vec![
                format!(
                    "{} can no longer sign users in nor get tokens: /authorize and /token \
                     refuse its client ID.",
                    c.name
                ),
                "The refresh tokens issued to it are revoked now; access tokens already issued \
                 run out on their own."
                    .into(),
                "This cannot be undone: a client created again with this ID is a new client, \
                 with a new secret."
                    .into(),
            ],
            facts: facts(&c),
            ..Confirmation::about("clients", id, "delete", "Delete client")
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        clients_admin::delete(state, &session.caller(), id).await?;
        Ok(see_other("/admin/clients?done=deleted"))
    }
}

/// `/admin/clients/{id}/secret`: the secret just made, once; then that it was shown.
async fn reveal_secret(
    req: HttpRequest,
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    let client = clients_admin::get(&state, &id).await?;
    let (secret, removal) = reveal::take(&req, &state, &session, (Secret::Client, &id));
    let name = &client.name;
    let segment = url_segment(&client.client_id);
    let page = RevealPage {
        chrome: Chrome::new(&session, "clients"),
        title: if query.is("rotated") {
            format!("New secret for the client “{name}”")
        } else if query.is("created") {
            format!("Client “{name}” created")
        } else {
            format!("The secret of the client “{name}”")
        },
        secret,
        code_id: "client-secret",
        shown: "Copy the secret now: it is shown only this once. Portico keeps only its digest.",
        notes: Vec::new(),
        gone: "The secret of this client was shown once, right after it was made, and is not \
               shown again: Portico keeps only its digest. If it was not copied, rotate it to get \
               a new one.",
        renew: Link {
            href: format!("/admin/clients/{segment}/secret/rotate"),
            label: "Rotate secret…",
        },
        snippet: Some(snippets::config_lines(
            state.settings.server.issuer.as_str(),
            &client,
        )),
        next: Link {
            href: format!("/admin/clients/{segment}"),
            label: "Open the client’s page",
        },
    };
    removal.with(&page)
}
