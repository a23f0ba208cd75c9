//! `/admin/clients/{id}`: one client. Its facts, the ready-to-paste configuration (issuer and
//! client id; the secret is only ever shown on creation or rotation), and the edit form for what
//! `PUT /admin/api/v1/clients/{id}` may change, through the same validation and service.
//! Config-managed clients are shown read-only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::auth::session::AdminSession;
use crate::admin::clients::pages::{editable, words};
use crate::admin::clients::service::{self as clients_admin, ClientInput, ClientView};
use crate::admin::http::csrf::Protected;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, Done, Pairs, back_to, render, submit};
use crate::admin::http::validation::FieldErrors;
use crate::clients::GrantType;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// What the form shows: the stored client at first, the admin's input after an error.
#[derive(Debug, Clone)]
pub struct EditValues {
    name: String,
    /// One per line.
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: Vec<String>,
    /// Separated by spaces.
    scopes: String,
    allowed_providers: Vec<String>,
    /// One per line.
    allowed_resources: String,
}

impl EditValues {
    fn of(client: &ClientView) -> Self {
        Self {
            name: client.name.clone(),
            redirect_uris: client.redirect_uris.join("\n"),
            post_logout_redirect_uris: client.post_logout_redirect_uris.join("\n"),
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.join(" "),
            allowed_providers: client.allowed_providers.clone(),
            allowed_resources: client.allowed_resources.join("\n"),
        }
    }

    fn posted(form: &Pairs) -> Self {
        Self {
            name: form.one("name"),
            redirect_uris: form.one("redirect_uris"),
            post_logout_redirect_uris: form.one("post_logout_redirect_uris"),
            grant_types: form.all("grant_types"),
            scopes: form.one("scopes"),
            allowed_providers: form.all("allowed_providers"),
            allowed_resources: form.one("allowed_resources"),
        }
    }

    /// The API's request body for these values. The type is the stored one: it never changes.
    fn input(&self, client_type: &str) -> ClientInput {
        ClientInput {
            client_id: None,
            name: self.name.clone(),
            client_type: Some(client_type.to_owned()),
            redirect_uris: words(&self.redirect_uris),
            post_logout_redirect_uris: words(&self.post_logout_redirect_uris),
            // No box ticked is a choice to validate (and refuse), not "use the default".
            grant_types: Some(self.grant_types.clone()),
            scopes: Some(words(&self.scopes)),
            allowed_providers: self.allowed_providers.clone(),
            allowed_resources: words(&self.allowed_resources),
        }
    }
}

/// A provider a client may be limited to: a checkbox on the form.
#[derive(Debug, Clone)]
pub struct ProviderChoice {
    pub id: String,
    pub label: String,
    pub enabled: bool,
    /// Named by the client but no longer configured.
    pub unknown: bool,
}

/// Every configured provider, and any the client still names that is gone.
async fn provider_choices(
    store: &Store,
    named: &[String],
) -> Result<Vec<ProviderChoice>, StoreError> {
    let mut choices: Vec<ProviderChoice> = crate::providers::repo::all(store)
        .await?
        .into_iter()
        .map(|p| ProviderChoice {
            id: p.id.to_string(),
            label: p.display_name,
            enabled: p.enabled,
            unknown: false,
        })
        .collect();
    for id in named {
        if !choices.iter().any(|c| &c.id == id) {
            choices.push(ProviderChoice {
                id: id.clone(),
                label: id.clone(),
                enabled: false,
                unknown: true,
            });
        }
    }
    Ok(choices)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/client.html")]
pub struct ClientPage {
    chrome: Chrome,
    client: ClientView,
    issuer: String,
    values: EditValues,
    providers: Vec<ProviderChoice>,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

impl ClientPage {
    async fn new(
        session: &AdminSession,
        state: &AppState,
        client: ClientView,
        values: EditValues,
    ) -> Result<Self, PageError> {
        let mut named = values.allowed_providers.clone();
        named.extend(client.allowed_providers.iter().cloned());
        Ok(Self {
            chrome: Chrome::new(session, "clients"),
            providers: provider_choices(&state.store, &named).await?,
            issuer: state.settings.server.issuer.as_str().to_owned(),
            client,
            values,
            errors: FieldErrors::new(),
            notice: None,
        })
    }

    pub fn grant_names(&self) -> Vec<&'static str> {
        GrantType::ALL.iter().map(|g| g.as_str()).collect()
    }

    pub fn has_grant(&self, grant: &str) -> bool {
        self.values.grant_types.iter().any(|g| g == grant)
    }

    pub fn allows(&self, provider: &str) -> bool {
        self.values.allowed_providers.iter().any(|p| p == provider)
    }

    /// The configuration snippet never holds a secret here.
    pub fn no_secret(&self) -> Option<&str> {
        None
    }
}

pub(super) async fn client_page(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<ClientPage, PageError> {
    let client = clients_admin::get(&state, &id).await?;
    let values = EditValues::of(&client);
    let mut page = ClientPage::new(&session, &state, client, values).await?;
    page.notice = query.notice(&[
        ("created", "The client was created."),
        ("updated", "The client was saved."),
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
    let values = EditValues::posted(&form);
    let input = values.input(&client.client_type).validate(Some(&id));
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
    page.errors = errors;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
