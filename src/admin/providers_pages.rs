//! `/admin/providers`: the providers pages. The list offers a create form made for each kind
//! (`?kind=`); `/admin/providers/{id}` edits one (read-only when config-managed), enables,
//! disables and deletes it, and for SAML shows what the IdP needs. "Test discovery" is a
//! second submit button of the same form, so it works without JavaScript. Every change goes
//! through the same service and validation as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, render, see_other};
use crate::admin::http::validation::FieldErrors;
use crate::admin::providers_admin::{self, ProviderView};
use crate::admin::providers_discovery::{self, DiscoveryReport};
use crate::admin::providers_input::ProviderInput;
use crate::providers::repo::ProviderError;
use crate::providers::supported_kind;
use crate::state::AppState;
use crate::upstream::ProviderKind;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/providers", web::get().to(providers_page))
        .route("/providers", web::post().to(create_provider))
        .route("/providers/{id}", web::get().to(provider_page))
        .route("/providers/{id}", web::post().to(update_provider))
        .route("/providers/{id}/enable", web::post().to(enable_provider))
        .route("/providers/{id}/disable", web::post().to(disable_provider))
        .route("/providers/{id}/delete", web::post().to(delete_provider));
}

/// The form as posted: lists are one item per line or separated by spaces; checkboxes are
/// present when ticked. `action` is the button pressed: `save` or `discover`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    email_domains: String,
    #[serde(default)]
    trust_email: Option<String>,
    #[serde(default)]
    hosted_domains: String,
    #[serde(default)]
    offline_access: Option<String>,
    #[serde(default)]
    allowed_orgs: String,
    #[serde(default)]
    github_api_base: String,
    #[serde(default)]
    github_web_base: String,
    #[serde(default)]
    saml_idp_metadata_xml: String,
    #[serde(default)]
    saml_idp_metadata_url: String,
    #[serde(default)]
    saml_name_id_format: String,
    #[serde(default)]
    saml_email_verified: Option<String>,
    #[serde(default)]
    action: String,
}

fn words(raw: &str) -> Vec<String> {
    raw.split_whitespace().map(str::to_owned).collect()
}

fn given(raw: &str) -> Option<String> {
    Some(raw.trim().to_owned()).filter(|s| !s.is_empty())
}

fn ticked(on: bool) -> Option<String> {
    on.then(|| "on".to_owned())
}

impl ProviderForm {
    /// A blank form for a new provider of `kind`.
    fn blank(kind: ProviderKind) -> Self {
        Self {
            kind: kind.as_str().to_owned(),
            enabled: ticked(true),
            offline_access: ticked(kind == ProviderKind::Google),
            saml_name_id_format: "unspecified".into(),
            ..Self::default()
        }
    }

    /// The form filled from a stored provider (never its secret).
    fn from_view(v: &ProviderView) -> Self {
        let join = |list: &Option<Vec<String>>| list.as_deref().unwrap_or_default().join(" ");
        Self {
            id: v.id.clone(),
            kind: v.kind.clone(),
            display_name: v.display_name.clone(),
            enabled: ticked(v.enabled),
            client_id: v.client_id.clone(),
            client_secret: String::new(),
            issuer: v.issuer.clone().unwrap_or_default(),
            scopes: v.scopes.join(" "),
            email_domains: v.email_domains.join(" "),
            trust_email: ticked(v.trust_email),
            hosted_domains: join(&v.hosted_domains),
            offline_access: ticked(v.offline_access.unwrap_or(false)),
            allowed_orgs: join(&v.allowed_orgs),
            github_api_base: v.github_api_base.clone().unwrap_or_default(),
            github_web_base: v.github_web_base.clone().unwrap_or_default(),
            saml_idp_metadata_xml: v.saml_idp_metadata_xml.clone().unwrap_or_default(),
            saml_idp_metadata_url: v.saml_idp_metadata_url.clone().unwrap_or_default(),
            saml_name_id_format: v
                .saml
                .as_ref()
                .map(|s| s.name_id_format.clone())
                .unwrap_or_default(),
            saml_email_verified: ticked(v.saml.as_ref().is_some_and(|s| s.email_verified)),
            action: String::new(),
        }
    }

    /// The API input this form stands for. Options the form does not show (an OIDC claim
    /// mapping, SAML attribute names…) are taken from `base`, the stored provider, so that
    /// saving the form never drops them.
    fn input(&self, kind: ProviderKind, base: Option<&ProviderView>) -> ProviderInput {
        let is = |k: ProviderKind| kind == k;
        let when = |on: bool, raw: &str| given(raw).filter(|_| on);
        let saml = is(ProviderKind::Saml).then(|| {
            let mut settings = base.and_then(|b| b.saml.clone()).unwrap_or_default();
            if let Some(format) = given(&self.saml_name_id_format) {
                settings.name_id_format = format;
            }
            settings.email_verified = self.saml_email_verified.is_some();
            settings
        });
        ProviderInput {
            id: Some(self.id.clone()),
            kind: Some(kind.as_str().to_owned()),
            display_name: given(&self.display_name),
            enabled: Some(self.enabled.is_some()),
            client_id: self.client_id.clone(),
            // Empty keeps the stored secret (on create: none).
            client_secret: given(&self.client_secret),
            issuer: when(
                is(ProviderKind::Oidc) || is(ProviderKind::Google),
                &self.issuer,
            ),
            scopes: Some(words(&self.scopes)).filter(|s| !s.is_empty()),
            email_domains: words(&self.email_domains),
            trust_email: self.trust_email.is_some(),
            hosted_domains: if is(ProviderKind::Google) {
                words(&self.hosted_domains)
            } else {
                Vec::new()
            },
            offline_access: is(ProviderKind::Google).then(|| self.offline_access.is_some()),
            allowed_orgs: if is(ProviderKind::Github) {
                words(&self.allowed_orgs)
            } else {
                Vec::new()
            },
            github_api_base: when(is(ProviderKind::Github), &self.github_api_base),
            github_web_base: when(is(ProviderKind::Github), &self.github_web_base),
            claims: base.and_then(|b| b.claims.clone()),
            saml_idp_metadata_xml: when(is(ProviderKind::Saml), &self.saml_idp_metadata_xml),
            saml_idp_metadata_url: when(is(ProviderKind::Saml), &self.saml_idp_metadata_url),
            saml,
        }
    }
}

/// One input of the form, as the template draws it.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub hint: &'static str,
    /// `text`, `textarea`, `secret` or `checkbox`.
    pub widget: &'static str,
    pub checked: bool,
    pub error: Option<String>,
}

/// The create or edit form of one kind, with its values, errors and discovery result.
pub struct FormState {
    pub kind: &'static str,
    pub action_url: String,
    pub creating: bool,
    pub read_only: bool,
    pub has_secret: bool,
    pub values: ProviderForm,
    pub errors: FieldErrors,
    pub discovery: Option<DiscoveryReport>,
}

impl FormState {
    fn new(kind: ProviderKind, values: ProviderForm, view: Option<&ProviderView>) -> Self {
        Self {
            kind: kind.as_str(),
            action_url: match view {
                Some(v) => format!("/admin/providers/{}", v.id),
                None => "/admin/providers".to_owned(),
            },
            creating: view.is_none(),
            read_only: view.is_some_and(|v| v.managed_by_config),
            has_secret: view.is_some_and(|v| v.has_client_secret),
            values,
            errors: FieldErrors::new(),
            discovery: None,
        }
    }

    pub fn offers_discovery(&self) -> bool {
        self.kind == "oidc" || self.kind == "google"
    }

    pub fn fields(&self) -> Vec<Field> {
        let f = &self.values;
        let mut out = Vec::new();
        let mut add = |name: &'static str,
                       label: &'static str,
                       value: &str,
                       hint: &'static str,
                       widget: &'static str,
                       checked: bool| {
            let error_key = if name == "saml_name_id_format" {
                "saml"
            } else {
                name
            };
            out.push(Field {
                name,
                label,
                value: value.to_owned(),
                hint,
                widget,
                checked,
                error: self.errors.get(error_key).map(str::to_owned),
            });
        };
        if self.creating {
            add(
                "id",
                "ID",
                &f.id,
                "used in URLs: lower-case letters, digits, -",
                "text",
                false,
            );
        }
        add(
            "display_name",
            "Display name",
            &f.display_name,
            "shown on the login page; default: the ID",
            "text",
            false,
        );
        let secret_hint = if self.has_secret {
            "stored encrypted; leave empty to keep it"
        } else {
            "stored encrypted, never shown again"
        };
        match self.kind {
            "google" => {
                add("client_id", "Client ID", &f.client_id, "", "text", false);
                add(
                    "client_secret",
                    "Client secret",
                    "",
                    secret_hint,
                    "secret",
                    false,
                );
                add(
                    "hosted_domains",
                    "Hosted domains",
                    &f.hosted_domains,
                    "Google Workspace domains allowed, separated by spaces; empty: any account",
                    "text",
                    false,
                );
                add(
                    "offline_access",
                    "Ask for a refresh token (offline access)",
                    "",
                    "",
                    "checkbox",
                    f.offline_access.is_some(),
                );
                add(
                    "issuer",
                    "Issuer",
                    &f.issuer,
                    "optional; default https://accounts.google.com",
                    "text",
                    false,
                );
            }
            "github" => {
                add("client_id", "Client ID", &f.client_id, "", "text", false);
                add(
                    "client_secret",
                    "Client secret",
                    "",
                    secret_hint,
                    "secret",
                    false,
                );
                add(
                    "allowed_orgs",
                    "Allowed organisations",
                    &f.allowed_orgs,
                    "org or org:team, separated by spaces; empty: any account",
                    "text",
                    false,
                );
                add(
                    "github_web_base",
                    "GitHub Enterprise web URL",
                    &f.github_web_base,
                    "https://HOST; empty: github.com",
                    "text",
                    false,
                );
                add(
                    "github_api_base",
                    "GitHub Enterprise API URL",
                    &f.github_api_base,
                    "https://HOST/api/v3; empty: api.github.com",
                    "text",
                    false,
                );
            }
            "oidc" => {
                add(
                    "issuer",
                    "Issuer",
                    &f.issuer,
                    "https URL; its /.well-known/openid-configuration is read",
                    "text",
                    false,
                );
                add("client_id", "Client ID", &f.client_id, "", "text", false);
                add(
                    "client_secret",
                    "Client secret",
                    "",
                    secret_hint,
                    "secret",
                    false,
                );
            }
            _ => {
                add(
                    "saml_idp_metadata_xml",
                    "IdP metadata XML",
                    &f.saml_idp_metadata_xml,
                    "paste the IdP's metadata, or give its URL below",
                    "textarea",
                    false,
                );
                add(
                    "saml_idp_metadata_url",
                    "IdP metadata URL",
                    &f.saml_idp_metadata_url,
                    "fetched and refreshed; https",
                    "text",
                    false,
                );
                add(
                    "saml_name_id_format",
                    "NameID format",
                    &f.saml_name_id_format,
                    "persistent, email, unspecified, transient or a URN",
                    "text",
                    false,
                );
                add(
                    "saml_email_verified",
                    "The IdP verifies e-mail addresses: mark the addresses it asserts verified",
                    "",
                    "",
                    "checkbox",
                    f.saml_email_verified.is_some(),
                );
            }
        }
        if self.kind != "saml" {
            add(
                "scopes",
                "Scopes",
                &f.scopes,
                "separated by spaces; empty: the kind's default",
                "text",
                false,
            );
        }
        add(
            "email_domains",
            "E-mail domains",
            &f.email_domains,
            "home-realm hints: users of these domains are sent here",
            "text",
            false,
        );
        add(
            "trust_email",
            "Trust e-mail: the addresses it verifies count as verified here, and may join an existing user with the same verified address",
            "",
            "",
            "checkbox",
            f.trust_email.is_some(),
        );
        add(
            "enabled",
            "Enabled",
            "",
            "",
            "checkbox",
            f.enabled.is_some(),
        );
        out
    }

    /// Errors about something the form has no input for (e.g. `claims`).
    pub fn other_errors(&self) -> Vec<String> {
        let shown: Vec<&str> = self
            .fields()
            .iter()
            .map(|f| {
                if f.name == "saml_name_id_format" || f.name == "saml_email_verified" {
                    "saml"
                } else {
                    f.name
                }
            })
            .collect();
        self.errors
            .clone()
            .into_map()
            .into_iter()
            .filter(|(k, _)| !shown.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}: {v}"))
            .collect()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/providers.html")]
pub struct ProvidersPage {
    chrome: Chrome,
    providers: Vec<ProviderView>,
    form: Option<FormState>,
    notice: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/provider.html")]
pub struct ProviderPage {
    chrome: Chrome,
    view: ProviderView,
    /// For redirect-based kinds: the redirect URI to register at the provider.
    callback_url: Option<String>,
    form: FormState,
    notice: Option<String>,
}

impl ProviderPage {
    fn new(session: &AdminSession, state: &AppState, view: ProviderView, form: FormState) -> Self {
        let callback_url = (view.kind != "saml").then(|| {
            format!(
                "{}/callback/{}",
                state.settings.server.issuer.as_str().trim_end_matches('/'),
                view.id
            )
        });
        Self {
            chrome: Chrome::new(session, "providers"),
            view,
            callback_url,
            form,
            notice: None,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    done: Option<String>,
    kind: Option<String>,
}

fn kind_of(raw: &str) -> Result<ProviderKind, PageError> {
    supported_kind(raw.trim()).map_err(PageError::BadRequest)
}

async fn list_page(
    session: &AdminSession,
    state: &AppState,
    form: Option<FormState>,
    notice: Option<String>,
) -> Result<ProvidersPage, PageError> {
    Ok(ProvidersPage {
        chrome: Chrome::new(session, "providers"),
        providers: providers_admin::all(state).await?,
        form,
        notice,
    })
}

async fn providers_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<ProvidersPage, PageError> {
    let form = match query.kind.as_deref() {
        Some(raw) => {
            let kind = kind_of(raw)?;
            Some(FormState::new(kind, ProviderForm::blank(kind), None))
        }
        None => None,
    };
    let notice = match query.done.as_deref() {
        Some("deleted") => Some("The provider was deleted.".to_owned()),
        _ => None,
    };
    list_page(&session, &state, form, notice).await
}

/// Field errors for the form, or the page's error for everything else.
fn form_error(err: ProviderError) -> Result<FieldErrors, PageError> {
    match err {
        ProviderError::Exists(_) => Ok(FieldErrors::single("id", "is already taken")),
        ProviderError::ManagedByConfig(_) => Err(PageError::BadRequest(err.to_string())),
        ProviderError::NotFound(_) => Err(PageError::NotFound),
        ProviderError::Store(e) => Err(e.into()),
    }
}

/// Runs "Test discovery" for the form's issuer, into the form.
async fn discover_into(state: &AppState, form: &mut FormState) {
    match providers_discovery::discover(state.connectors.http(), &form.values.issuer).await {
        Ok(report) => form.discovery = Some(report),
        Err(errors) => form.errors = errors,
    }
}

fn status_of(form: &FormState) -> StatusCode {
    if form.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

async fn create_provider(
    state: web::Data<AppState>,
    form: Protected<ProviderForm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let kind = kind_of(&form.kind)?;
    let mut state_form = FormState::new(kind, form.clone(), None);
    if form.action == "discover" {
        discover_into(&state, &mut state_form).await;
    } else {
        let input = form.input(kind, None);
        state_form.errors = match input.validate(None, state.connectors.http()).await {
            Ok(new) => match providers_admin::create(&state, &session.caller(), &new).await {
                Ok(created) => {
                    return Ok(see_other(&format!(
                        "/admin/providers/{}?done=created",
                        created.id
                    )));
                }
                Err(e) => form_error(e)?,
            },
            Err(errors) => errors,
        };
    }
    let page = list_page(&session, &state, Some(state_form), None).await?;
    let status = page.form.as_ref().map_or(StatusCode::OK, status_of);
    render(status, &page)
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn provider_page(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> Result<ProviderPage, PageError> {
    let view = providers_admin::get(&state, &id)
        .await
        .map_err(|e| form_error(e).err().unwrap_or(PageError::NotFound))?;
    let kind = kind_of(&view.kind)?;
    let form = FormState::new(kind, ProviderForm::from_view(&view), Some(&view));
    let mut page = ProviderPage::new(&session, &state, view, form);
    page.notice = match query.done.as_deref() {
        Some("created") => Some("The provider was created; it offers logins now.".to_owned()),
        Some("saved") => Some("Saved; the next login uses the new settings.".to_owned()),
        Some("enabled") => Some("The provider is enabled.".to_owned()),
        Some("disabled") => Some("The provider is disabled: it offers no login.".to_owned()),
        _ => None,
    };
    Ok(page)
}

async fn update_provider(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<ProviderForm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let current = providers_admin::current(&state, &id)
        .await
        .map_err(|e| form_error(e).err().unwrap_or(PageError::NotFound))?;
    if current.managed_by_config {
        return Err(form_error(ProviderError::ManagedByConfig(id.into_inner()))
            .err()
            .unwrap_or(PageError::NotFound));
    }
    let view = ProviderView::new(&current, state.settings.server.issuer.as_str());
    let kind = current.kind;
    let mut values = form.clone();
    values.id = view.id.clone();
    let mut state_form = FormState::new(kind, values, Some(&view));
    if form.action == "discover" {
        discover_into(&state, &mut state_form).await;
    } else {
        let input = form.input(kind, Some(&view));
        match input
            .validate(Some(&current), state.connectors.http())
            .await
        {
            Ok(new) => match providers_admin::update(&state, &session.caller(), &new).await {
                Ok(saved) => {
                    return Ok(see_other(&format!(
                        "/admin/providers/{}?done=saved",
                        saved.id
                    )));
                }
                Err(e) => state_form.errors = form_error(e)?,
            },
            Err(errors) => state_form.errors = errors,
        }
    }
    let status = status_of(&state_form);
    let page = ProviderPage::new(&session, &state, view, state_form);
    render(status, &page)
}

async fn set_enabled(
    state: &AppState,
    id: &str,
    form: Protected<NoFields>,
    enabled: bool,
) -> Result<HttpResponse, PageError> {
    match providers_admin::set_enabled(state, &form.session.caller(), id, enabled).await {
        Ok(v) => Ok(see_other(&format!(
            "/admin/providers/{}?done={}",
            v.id,
            if enabled { "enabled" } else { "disabled" }
        ))),
        Err(e) => Err(form_error(e)
            .err()
            .unwrap_or_else(|| PageError::BadRequest("cannot change it".into()))),
    }
}

async fn enable_provider(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    set_enabled(&state, &id, form, true).await
}

async fn disable_provider(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    set_enabled(&state, &id, form, false).await
}

async fn delete_provider(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    match providers_admin::delete(&state, &form.session.caller(), &id).await {
        Ok(_) => Ok(see_other("/admin/providers?done=deleted")),
        Err(e) => Err(form_error(e)
            .err()
            .unwrap_or_else(|| PageError::BadRequest("cannot delete".into()))),
    }
}
