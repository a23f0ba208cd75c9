//! `/admin/providers`: the providers pages. The list offers each kind as a card with its logo,
//! and a create form for the kind chosen (`?kind=`), drawn from the inputs its module declares
//! (`upstream::kinds`); `/admin/providers/{id}` edits one (read-only when config-managed),
//! enables, disables and deletes it (deleting asks first, at `…/delete`).
//!
//! What to register at the provider (the redirect URI; for SAML what the IdP needs) is shown
//! on a provider's page and already on the create form, since the admin must register it
//! upstream before the provider can work: computed by the kind's one rule
//! ([`kinds::AnyKind::shown`]) for the ID typed, or for a placeholder until there is one, and
//! kept in step with the ID input by `static/provider-form.js` where scripts run. Each form
//! links to its kind's setup guide (`admin::guides`). "Test discovery" is a second submit
//! button of the same form, so it works without JavaScript. Every change goes through the same
//! service and validation as the API.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use serde_json::Value;

use crate::admin::auth::session::AdminSession;
use crate::admin::guides;
use crate::admin::http::assets;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Ask, Chrome, Confirmation, Destructive, Done, asks_first};
use crate::admin::http::pages::{back_to, form_status, render, see_other, submit};
use crate::admin::http::validation::FieldErrors;
use crate::admin::providers::discovery::{self as providers_discovery, DiscoveryReport};
use crate::admin::providers::input::ProviderInput;
use crate::admin::providers::service::{
    self as providers_admin, ClaimsPreview, PreviewError, ProviderView,
};
use crate::oidc::logos;
use crate::providers::repo::ProviderWrite;
use crate::providers::{Provider, supported_kind};
use crate::state::AppState;
use crate::upstream::kinds::{self, Field as Input, ID_PLACEHOLDER, Shown, Widget};
use crate::upstream::{ProviderId, ProviderKind};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/providers", web::get().to(providers_page))
        .route("/providers", web::post().to(create_provider))
        .route("/providers/{id}", web::get().to(provider_page))
        .route("/providers/{id}", web::post().to(update_provider))
        .route(
            "/providers/{id}/enable",
            web::post().to(set_enabled::<true>),
        )
        .route(
            "/providers/{id}/disable",
            web::post().to(set_enabled::<false>),
        )
        .route(
            "/providers/{id}/claims-preview",
            web::post().to(preview_claims),
        );
    asks_first::<DeleteProvider>(cfg, "/providers/{id}/delete", "/providers/{id}/delete");
}

/// The form's inputs: the fields every provider has around its kind's (`Kind::FORM`).
const ID: Input = Input::new(
    "id",
    "ID",
    "used in URLs: lower-case letters, digits, -",
    Widget::Text,
);
const DISPLAY_NAME: Input = Input::new(
    "display_name",
    "Display name",
    "shown on the login page; default: the ID",
    Widget::Text,
);
/// Offered where the kind takes scopes ([`kinds::AnyKind::takes_incremental_scopes`]).
const INCREMENTAL_SCOPES: Input = Input::new(
    "incremental_scopes",
    "Incremental scopes",
    "scopes a service may ask the user to add through the token broker, separated by spaces",
    Widget::Words,
);
const TAIL: [Input; 3] = [
    Input::new(
        "email_domains",
        "E-mail domains",
        "home-realm hints: users of these domains are sent here",
        Widget::Words,
    ),
    Input::new(
        "trust_email",
        "Trust e-mail: the addresses it verifies count as verified here, and may join an \
         existing user with the same verified address",
        "",
        Widget::Checkbox,
    ),
    Input::new("enabled", "Enabled", "", Widget::Checkbox),
];

fn inputs(kind: ProviderKind, creating: bool) -> Vec<&'static Input> {
    let head: &[&Input] = if creating {
        &[&ID, &DISPLAY_NAME]
    } else {
        &[&DISPLAY_NAME]
    };
    let kind = kinds::find(kind);
    let incremental: &[&Input] = if kind.takes_incremental_scopes() {
        &[&INCREMENTAL_SCOPES]
    } else {
        &[]
    };
    (head.iter().copied())
        .chain(kind.form())
        .chain(incremental.iter().copied())
        .chain(&kinds::CLAIM_RULES)
        .chain(&TAIL)
        .collect()
}

/// The form's input name for `option`, and the field its errors are about.
fn name(input: &Input) -> String {
    input.option.replace('.', "_")
}

fn error_key(input: &Input) -> &'static str {
    input.option.split('.').next().unwrap_or(input.option)
}

/// The form as posted, by input name: lists are one item per line or separated by spaces;
/// checkboxes are present when ticked. `action` is the button pressed: `save` or `discover`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct ProviderForm(BTreeMap<String, String>);

impl ProviderForm {
    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// The form showing `values` (a provider as the API shows it, or a kind's defaults).
    fn showing(kind: ProviderKind, creating: bool, values: &Value) -> Self {
        let mut form = BTreeMap::from([("kind".to_owned(), kind.as_str().to_owned())]);
        for input in inputs(kind, creating) {
            let text = match (input.widget, values.pointer(&pointer(input.option))) {
                (Widget::Secret, _) | (_, None | Some(Value::Null)) => continue,
                (Widget::Checkbox, Some(v)) if v.as_bool() == Some(true) => "on".to_owned(),
                (Widget::Checkbox, Some(_)) => continue,
                (Widget::Json, Some(Value::Object(map))) if map.is_empty() => continue,
                (Widget::Json, Some(v)) => serde_json::to_string_pretty(v).unwrap_or_default(),
                (Widget::Words, Some(Value::Array(items))) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                (_, Some(Value::String(s))) => s.clone(),
                (_, Some(other)) => other.to_string(),
            };
            form.insert(name(input), text);
        }
        Self(form)
    }

    /// A blank form for a new provider of `kind`: its options' defaults, enabled.
    fn blank(kind: ProviderKind) -> Self {
        let mut values = Value::Object(kinds::find(kind).defaults());
        values["enabled"] = true.into();
        Self::showing(kind, true, &values)
    }

    /// The form filled from a stored provider (never its secret).
    fn from_view(v: &ProviderView) -> Self {
        let values = serde_json::to_value(v).unwrap_or_default();
        let mut form = Self::showing(v.kind, false, &values);
        form.0.insert("id".into(), v.id.clone());
        form
    }

    /// The API input this form stands for. Options the form does not show (an OIDC claim
    /// mapping, SAML attribute names…) are taken from `base`, the stored provider (or the
    /// kind's defaults), so that saving the form never drops them.
    fn input(
        &self,
        kind: ProviderKind,
        base: Option<&ProviderView>,
    ) -> Result<ProviderInput, FieldErrors> {
        let base = base.map_or_else(|| kinds::find(kind).defaults(), |b| b.options.clone());
        let mut body = Value::Object(base);
        for input in inputs(kind, true) {
            let raw = self.get(&name(input));
            let value = match input.widget {
                Widget::Text | Widget::Textarea | Widget::Secret => {
                    kinds::given(Some(raw)).map(Value::String)
                }
                Widget::Number => match kinds::given(Some(raw)) {
                    None => None,
                    Some(n) => Some(Value::from(n.parse::<u64>().map_err(|_| {
                        FieldErrors::single(
                            error_key(input),
                            format!("{}: enter a whole number (not “{n}”).", input.label),
                        )
                    })?)),
                },
                Widget::Json => match kinds::given(Some(raw)) {
                    None => None,
                    Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                        FieldErrors::single(
                            error_key(input),
                            format!("{}: this is not JSON ({e}).", input.label),
                        )
                    })?),
                },
                Widget::Words => Some(raw.split_whitespace().map(|w| w.into()).collect())
                    .filter(|v: &Vec<Value>| !v.is_empty())
                    .map(Value::Array),
                Widget::Checkbox => Some(Value::Bool(self.0.contains_key(&name(input)))),
            };
            let (parent, leaf) = input.option.rsplit_once('.').unwrap_or(("", input.option));
            if let Some(Value::Object(parent)) = body.pointer_mut(&pointer(parent)) {
                match value {
                    Some(value) => parent.insert(leaf.to_owned(), value),
                    None => parent.remove(leaf),
                };
            }
        }
        body["id"] = self.get("id").into();
        body["kind"] = kind.as_str().into();
        serde_json::from_value(body).map_err(|e| FieldErrors::single("form", e.to_string()))
    }
}

/// The JSON pointer of a dotted option path (`""`: the whole value).
fn pointer(option: &str) -> String {
    option
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| format!("/{p}"))
        .collect()
}

/// One input of the form, as the template draws it.
pub struct Field {
    pub name: String,
    pub label: &'static str,
    pub value: String,
    pub hint: &'static str,
    /// `text`, `textarea`, `secret` or `checkbox`.
    pub widget: &'static str,
    pub checked: bool,
    pub error: Option<String>,
    /// Refused empty: the ID, and what the kind's check requires (a stored secret is kept
    /// when its input is left empty, so it is not required then).
    pub required: bool,
}

/// What to register at the provider, as a form shows it. For a saved provider, its values; for
/// a new one, those of the ID typed (of [`ID_PLACEHOLDER`] until it is a valid ID), each with
/// its pattern (its value for the placeholder), which `provider-form.js` fills in with the ID
/// as it is typed.
pub struct Register {
    pub shown: Shown,
    patterns: Vec<String>,
}

impl Register {
    fn saved(view: &ProviderView) -> Self {
        Self {
            shown: view.shown.clone(),
            patterns: Vec::new(),
        }
    }

    fn new_provider(kind: ProviderKind, issuer: &str, typed_id: &str) -> Self {
        let kind = kinds::find(kind);
        let pattern = kind.shown(&Value::Null, issuer, ID_PLACEHOLDER);
        let shown = match ProviderId::parse(typed_id.trim()) {
            Ok(id) => kind.shown(&Value::Null, issuer, id.as_str()),
            Err(_) => pattern.clone(),
        };
        Self {
            shown,
            patterns: pattern.values.into_iter().map(|v| v.value).collect(),
        }
    }

    /// The pattern of the `index`th value; `None` on a saved provider's page.
    pub fn pattern(&self, index: &usize) -> Option<&str> {
        self.patterns.get(*index).map(String::as_str)
    }

    pub fn placeholder(&self) -> &'static str {
        ID_PLACEHOLDER
    }
}

/// An error as shown beside its field: the kinds' messages are sentences that say what to do
/// and stand alone; the shared checks' fragments ("must be at most 255 characters") get the
/// field's label in front.
fn beside(input: &Input, message: &str) -> String {
    if message.starts_with(|c: char| c.is_lowercase()) {
        format!("{}: {message}", input.label)
    } else {
        message.to_owned()
    }
}

/// The create or edit form of one kind, with its values, errors and discovery result.
pub struct FormState {
    pub kind: ProviderKind,
    pub action_url: String,
    pub creating: bool,
    pub read_only: bool,
    pub has_secret: bool,
    pub values: ProviderForm,
    pub errors: FieldErrors,
    pub discovery: Option<DiscoveryReport>,
    pub register: Register,
}

impl FormState {
    /// `issuer`: Portico's, which what to register at the provider starts with.
    fn new(
        kind: ProviderKind,
        values: ProviderForm,
        view: Option<&ProviderView>,
        issuer: &str,
    ) -> Self {
        let register = match view {
            Some(v) => Register::saved(v),
            None => Register::new_provider(kind, issuer, values.get("id")),
        };
        Self {
            kind,
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
            register,
        }
    }

    pub fn offers_discovery(&self) -> bool {
        kinds::find(self.kind).offers_discovery()
    }

    /// The kind's name ("OpenID Connect").
    pub fn title(&self) -> &'static str {
        kinds::find(self.kind).title()
    }

    /// The kind's setup guide.
    pub fn guide(&self) -> String {
        guides::url(self.kind)
    }

    /// The script that keeps what to register in step with the ID typed.
    pub fn script(&self) -> String {
        assets::url("provider-form.js")
    }

    pub fn fields(&self) -> Vec<Field> {
        inputs(self.kind, self.creating)
            .into_iter()
            .map(|input| {
                let name = name(input);
                let kept = input.widget == Widget::Secret && self.has_secret;
                let required = !self.read_only
                    && (input.option == "id"
                        || (kinds::find(self.kind).requires(input.option) && !kept));
                let hint = match input.widget {
                    Widget::Secret if self.has_secret => "stored encrypted; leave empty to keep it",
                    Widget::Secret => "stored encrypted, never shown again",
                    _ => input.hint,
                };
                Field {
                    value: match input.widget {
                        Widget::Secret | Widget::Checkbox => String::new(),
                        _ => self.values.get(&name).to_owned(),
                    },
                    checked: input.widget == Widget::Checkbox && self.values.0.contains_key(&name),
                    required,
                    name,
                    label: input.label,
                    hint,
                    widget: match input.widget {
                        Widget::Text | Widget::Words | Widget::Number => "text",
                        Widget::Textarea | Widget::Json => "textarea",
                        Widget::Secret => "secret",
                        Widget::Checkbox => "checkbox",
                    },
                    error: self.errors.get(error_key(input)).map(|e| beside(input, e)),
                }
            })
            .collect()
    }

    /// Errors about something the form has no input for (e.g. `claims`).
    pub fn other_errors(&self) -> Vec<String> {
        let shown: Vec<&str> = inputs(self.kind, self.creating)
            .into_iter()
            .map(error_key)
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
    /// The kinds to add.
    kinds: Vec<KindCard>,
    form: Option<FormState>,
    notice: Option<&'static str>,
    /// `providers::namespace_warning`, when it applies.
    namespace_warning: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/provider.html")]
pub struct ProviderPage {
    chrome: Chrome,
    view: ProviderView,
    form: FormState,
    notice: Option<&'static str>,
    preview: PreviewState,
}

impl ProviderPage {
    fn new(session: &AdminSession, view: ProviderView, form: FormState) -> Self {
        Self {
            chrome: Chrome::new(session, "providers"),
            view,
            form,
            notice: None,
            preview: PreviewState::default(),
        }
    }
}

/// The claims preview of a provider's page: the claims pasted, and what came out or why not.
#[derive(Default)]
pub struct PreviewState {
    pub claims: String,
    pub result: Option<ClaimsPreview>,
    pub error: Option<String>,
}

impl PreviewState {
    /// The static and extra claims, one per line as `name: JSON value`.
    pub fn extra_claims(&self) -> Vec<(String, String)> {
        self.result
            .iter()
            .flat_map(|r| r.claims.iter())
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }
}

/// The preview form: the upstream claims, as JSON text.
#[derive(Debug, Deserialize)]
struct PreviewForm {
    #[serde(default)]
    claims: String,
}

/// Runs the provider's mapping and claims pipeline on pasted claims and shows the result on its
/// page; changes nothing (a POST only to carry the claims and the CSRF token).
async fn preview_claims(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<PreviewForm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let view = providers_admin::get(&state, &id).await?;
    let issuer = state.settings.server.issuer.as_str();
    let values = ProviderForm::from_view(&view);
    let provider_form = FormState::new(view.kind, values, Some(&view), issuer);
    let outcome = match providers_admin::claims_from_text(&form.claims) {
        Ok(claims) => providers_admin::preview_claims(&state, &id, &claims).await,
        Err(e) => Err(e),
    };
    let mut preview = PreviewState {
        claims: form.claims,
        ..PreviewState::default()
    };
    let status = match outcome {
        Ok(result) => {
            preview.result = Some(result);
            actix_web::http::StatusCode::OK
        }
        Err(PreviewError::Claims(why)) => {
            preview.error = Some(why);
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(PreviewError::Provider(e)) => return Err(e.into()),
    };
    let mut page = ProviderPage::new(&session, view, provider_form);
    page.preview = preview;
    render(status, &page)
}

/// A kind on the "Add a provider" cards.
pub struct KindCard {
    pub kind: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    pub logo: String,
}

/// `?kind=`: the kind whose create form the list shows.
#[derive(Deserialize)]
struct KindQuery {
    kind: Option<String>,
}

fn kind_of(raw: &str) -> Result<ProviderKind, PageError> {
    supported_kind(raw.trim()).map_err(PageError::BadRequest)
}

async fn list_page(
    session: &AdminSession,
    state: &AppState,
    form: Option<FormState>,
    notice: Option<&'static str>,
) -> Result<ProvidersPage, PageError> {
    let stored = crate::providers::repo::all(&state.store).await?;
    Ok(ProvidersPage {
        namespace_warning: crate::providers::namespace_warning(&stored),
        chrome: Chrome::new(session, "providers"),
        providers: providers_admin::all(state).await?,
        kinds: kinds::KINDS
            .iter()
            .map(|k| KindCard {
                kind: k.kind().as_str(),
                title: k.title(),
                summary: k.summary(),
                logo: logos::url(k.kind()),
            })
            .collect(),
        form,
        notice,
    })
}

async fn providers_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<KindQuery>,
    done: web::Query<Done>,
) -> Result<ProvidersPage, PageError> {
    let form = match query.kind.as_deref() {
        Some(raw) => {
            let kind = kind_of(raw)?;
            let issuer = state.settings.server.issuer.as_str();
            Some(FormState::new(
                kind,
                ProviderForm::blank(kind),
                None,
                issuer,
            ))
        }
        None => None,
    };
    let notice = done.notice(&[("deleted", "The provider was deleted.")]);
    list_page(&session, &state, form, notice).await
}

/// Runs "Test discovery" for the form's issuer, into the form.
async fn discover_into(state: &AppState, form: &mut FormState) {
    let issuer = form.values.get("issuer");
    match providers_discovery::discover(state.connectors.http(), issuer).await {
        Ok(report) => form.discovery = Some(report),
        Err(errors) => form.errors = errors,
    }
}

/// The form turned into the API's input and validated like it (against the stored
/// providers too: the outer error is the store's).
async fn validated(
    state: &AppState,
    form: &ProviderForm,
    kind: ProviderKind,
    current: Option<(&Provider, &ProviderView)>,
) -> Result<Result<ProviderWrite, FieldErrors>, crate::store::StoreError> {
    let others = crate::providers::repo::all(&state.store).await?;
    let input = match form.input(kind, current.map(|(_, v)| v)) {
        Ok(input) => input,
        Err(errors) => return Ok(Err(errors)),
    };
    Ok(input
        .validate(current.map(|(p, _)| p), &others, state.connectors.http())
        .await)
}

async fn create_provider(
    state: web::Data<AppState>,
    form: Protected<ProviderForm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let kind = kind_of(form.get("kind"))?;
    let issuer = state.settings.server.issuer.as_str();
    let mut state_form = FormState::new(kind, form.clone(), None, issuer);
    if form.get("action") == "discover" {
        discover_into(&state, &mut state_form).await;
    } else {
        let input = validated(&state, &form, kind, None).await?;
        let caller = session.caller();
        let created = submit(input, async |new| {
            providers_admin::create(&state, &caller, &new).await
        })
        .await?;
        match created {
            Ok(created) => return Ok(back_to("/admin/providers", &created.id, "created")),
            Err(errors) => state_form.errors = errors,
        }
    }
    let status = form_status(&state_form.errors);
    let page = list_page(&session, &state, Some(state_form), None).await?;
    render(status, &page)
}

async fn provider_page(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<ProviderPage, PageError> {
    let view = providers_admin::get(&state, &id).await?;
    let issuer = state.settings.server.issuer.as_str();
    let form = FormState::new(
        view.kind,
        ProviderForm::from_view(&view),
        Some(&view),
        issuer,
    );
    let mut page = ProviderPage::new(&session, view, form);
    page.notice = query.notice(&[
        ("created", "The provider was created; it offers logins now."),
        ("saved", "Saved; the next login uses the new settings."),
        ("enabled", "The provider is enabled."),
        ("disabled", "The provider is disabled: it offers no login."),
    ]);
    Ok(page)
}

async fn update_provider(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<ProviderForm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let current = providers_admin::editable(&state, &id).await?;
    let view = ProviderView::new(&current, state.settings.server.issuer.as_str());
    let kind = current.kind;
    let mut values = form.clone();
    values.0.insert("id".into(), view.id.clone());
    let issuer = state.settings.server.issuer.as_str();
    let mut state_form = FormState::new(kind, values.clone(), Some(&view), issuer);
    if form.get("action") == "discover" {
        discover_into(&state, &mut state_form).await;
    } else {
        let input = validated(&state, &values, kind, Some((&current, &view))).await?;
        let caller = session.caller();
        let saved = submit(input, async |new| {
            providers_admin::update(&state, &caller, &new).await
        })
        .await?;
        match saved {
            Ok(saved) => return Ok(back_to("/admin/providers", &saved.id, "saved")),
            Err(errors) => state_form.errors = errors,
        }
    }
    let status = form_status(&state_form.errors);
    let page = ProviderPage::new(&session, view, state_form);
    render(status, &page)
}

/// `/enable` (`ENABLED`) or `/disable`.
async fn set_enabled<const ENABLED: bool>(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    let v = providers_admin::set_enabled(&state, &form.session.caller(), &id, ENABLED).await?;
    let done = if ENABLED { "enabled" } else { "disabled" };
    Ok(back_to("/admin/providers", &v.id, done))
}

/// Deleting a provider.
struct DeleteProvider;

impl Destructive for DeleteProvider {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let p = providers_admin::editable(state, id).await?;
        Ok(Ask::Confirm(Confirmation {
            title: format!("Delete the provider “{}”?", p.display_name),
            facts: vec![("Provider ID", id.into()), ("Kind", p.kind.as_str().into())],
            consequences: vec![
                "Users stay, but their identities at this provider are removed, with the \
                 upstream tokens kept for them; e-mail addresses it verified count as \
                 unverified until another provider vouches for them."
                    .into(),
                "The SSO sessions that came through it end now, and the refresh tokens issued \
                 from those identities are revoked; their unredeemed codes and the logins \
                 waiting at it are dropped. Access tokens already issued run out on their own."
                    .into(),
                "Nobody can sign in through it any more. To stop logins for a while, disable it \
                 instead: users, identities and sessions then stay."
                    .into(),
            ],
            ..Confirmation::about("providers", id, "delete", "Delete provider")
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        providers_admin::delete(state, &session.caller(), id).await?;
        Ok(see_other("/admin/providers?done=deleted"))
    }
}
