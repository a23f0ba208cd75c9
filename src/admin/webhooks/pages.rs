//! `/admin/webhooks`: the webhooks pages. The list shows each endpoint's health and creates
//! endpoints (the secret shown once, on `/admin/webhooks/{id}/secret` after the redirect); an
//! endpoint's page edits it, rotates its secret and deletes it (both after asking), sends a
//! test ping, and shows its delivery log with a replay button per delivery and the attempts of
//! one delivery. Config-managed endpoints are read-only. Same service as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::url_segment;
use crate::admin::http::pages::{Ask, Chrome, Confirmation, Destructive, Done, Pairs, asks_first};
use crate::admin::http::pages::{back_to, form_status, link, notice, render, see_other, submit};
use crate::admin::http::reveal::{self, Link, RevealPage, Secret};
use crate::admin::http::time;
use crate::admin::http::validation::FieldErrors;
use crate::admin::webhooks::service::{
    self as webhooks_admin, DeliveryDetail, DeliveryParams, DeliveryView, WebhookInput, WebhookView,
};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks", web::get().to(list_page))
        .route("/webhooks", web::post().to(create))
        .route("/webhooks/{id}", web::get().to(endpoint_page))
        .route("/webhooks/{id}", web::post().to(update))
        .route("/webhooks/{id}/secret", web::get().to(reveal_secret))
        .route("/webhooks/{id}/test", web::post().to(test_ping))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/retry",
            web::post().to(replay),
        );
    asks_first::<RotateSecret>(cfg, "/webhooks/{id}/secret/rotate", "/webhooks/{id}/secret");
    asks_first::<DeleteEndpoint>(cfg, "/webhooks/{id}/delete", "/webhooks/{id}/delete");
}

/// The endpoint form: `events` repeats (one checkbox each), so it is posted as [`Pairs`].
#[derive(Debug, Clone, Default)]
pub struct WebhookForm {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
}

impl WebhookForm {
    fn posted(form: &Pairs) -> Self {
        Self {
            url: form.one("url"),
            description: form.one("description"),
            events: form.all("events"),
            enabled: !form.all("enabled").is_empty(),
        }
    }

    fn of(w: &WebhookView) -> Self {
        Self {
            url: w.url.clone(),
            description: w.description.clone(),
            events: w.events.clone(),
            enabled: w.enabled,
        }
    }

    fn input(&self) -> WebhookInput {
        WebhookInput {
            url: self.url.clone(),
            events: self.events.clone(),
            enabled: Some(self.enabled),
            description: Some(self.description.clone()),
        }
    }

    pub fn has(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

// ---- the list ------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "admin/webhooks.html")]
pub struct WebhooksPage {
    chrome: Chrome,
    webhooks: Vec<WebhookView>,
    event_types: Vec<&'static str>,
    form: WebhookForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

impl WebhooksPage {
    async fn new(session: &AdminSession, state: &AppState) -> Result<Self, PageError> {
        Ok(Self {
            chrome: Chrome::new(session, "webhooks"),
            webhooks: webhooks_admin::all(state).await?,
            event_types: webhooks_admin::event_types(),
            form: WebhookForm {
                enabled: true,
                ..WebhookForm::default()
            },
            errors: FieldErrors::new(),
            notice: None,
        })
    }
}

async fn list_page(
    session: AdminSession,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> Result<WebhooksPage, PageError> {
    let mut page = WebhooksPage::new(&session, &state).await?;
    page.notice = query.notice(&[("deleted", "The endpoint was deleted.")]);
    Ok(page)
}

async fn create(
    state: web::Data<AppState>,
    form: Protected<Pairs>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let form = WebhookForm::posted(&form);
    let input = form.input().validate(&state);
    let caller = session.caller();
    let result = submit(input, async |valid| {
        webhooks_admin::create(&state, &caller, valid).await
    })
    .await?;
    let errors = match result {
        Ok(created) => {
            let endpoint = (Secret::Webhook, created.webhook.id.as_str());
            return Ok(reveal::hand_over(
                &state,
                &session,
                endpoint,
                &created.secret,
                "created",
            ));
        }
        Err(errors) => errors,
    };
    let mut page = WebhooksPage::new(&session, &state).await?;
    (page.form, page.errors) = (form, errors);
    render(form_status(&page.errors), &page)
}

// ---- one endpoint --------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "admin/webhook.html")]
pub struct WebhookPage {
    chrome: Chrome,
    webhook: WebhookView,
    event_types: Vec<&'static str>,
    form: WebhookForm,
    errors: FieldErrors,
    deliveries: Vec<DeliveryView>,
    /// The status the log is filtered by ("" for all).
    status: String,
    /// The link to the next page of the log.
    next: Option<String>,
    /// The delivery whose attempts are shown.
    selected: Option<DeliveryDetail>,
    notice: Option<&'static str>,
}

/// `?status=&cursor=&delivery=&done=` on an endpoint's page.
#[derive(Debug, Default, Deserialize)]
struct EndpointQuery {
    status: Option<String>,
    cursor: Option<String>,
    delivery: Option<i64>,
    done: Option<String>,
}

impl WebhookPage {
    async fn load(
        session: &AdminSession,
        state: &AppState,
        id: &str,
        query: &EndpointQuery,
    ) -> Result<Self, PageError> {
        let webhook = webhooks_admin::get(state, id).await?;
        let params = DeliveryParams {
            status: query.status.clone(),
            limit: None,
            cursor: query.cursor.clone(),
        };
        // A hand-edited query string falls back to the whole log.
        let filters = params
            .parse()
            .or_else(|_| DeliveryParams::default().parse())
            .map_err(|_| PageError::BadRequest("bad delivery filters".into()))?;
        let log = webhooks_admin::deliveries(state, id, &filters).await?;
        let status = filters.status.clone().unwrap_or_default();
        let next = log.next_cursor.map(|cursor| {
            let path = format!("/admin/webhooks/{}", url_segment(id));
            link(&path, &[("status", &status), ("cursor", &cursor)])
        });
        let selected = match query.delivery {
            Some(d) => Some(webhooks_admin::delivery(state, id, d).await?),
            None => None,
        };
        Ok(Self {
            chrome: Chrome::new(session, "webhooks"),
            form: WebhookForm::of(&webhook),
            webhook,
            event_types: webhooks_admin::event_types(),
            errors: FieldErrors::new(),
            deliveries: log.items,
            status,
            next,
            selected,
            notice: notice(query.done.as_deref(), &NOTICES),
        })
    }
}

/// What the endpoint's page says after a change.
const NOTICES: [(&str, &str); 4] = [
    ("created", "The endpoint was created."),
    ("updated", "The endpoint was saved."),
    (
        "pinged",
        "A test ping was queued; it appears in the log below.",
    ),
    ("replayed", "The delivery was queued again."),
];

async fn endpoint_page(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<EndpointQuery>,
) -> Result<WebhookPage, PageError> {
    WebhookPage::load(&session, &state, &id, &query).await
}

async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<Pairs>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let form = WebhookForm::posted(&form);
    let input = form.input().validate(&state);
    let caller = session.caller();
    let saved = submit(input, async |valid| {
        webhooks_admin::update(&state, &caller, &id, valid).await
    })
    .await?;
    let errors = match saved {
        Ok(_) => return Ok(back_to("/admin/webhooks", &id, "updated")),
        Err(errors) => errors,
    };
    let mut page = WebhookPage::load(&session, &state, &id, &EndpointQuery::default()).await?;
    page.form = form;
    page.errors = errors;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// Deleting an endpoint.
struct DeleteEndpoint;

impl Destructive for DeleteEndpoint {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let w = webhooks_admin::get(state, id).await?;
        if w.managed_by_config {
            return Err(PageError::BadRequest(
                "this endpoint is declared in portico.toml; change it there".into(),
            ));
        }
        Ok(Ask::Confirm(Confirmation {
            title: format!("Delete the endpoint {}?", w.url),
            consequences: vec![
                "It receives no more events; its pending deliveries and its delivery log are \
                 deleted."
                    .into(),
                "This cannot be undone: an endpoint created again with this URL gets a new ID \
                 and a new secret."
                    .into(),
            ],
            facts: vec![("Endpoint ID", w.id)],
            ..Confirmation::about("webhooks", id, "delete", "Delete endpoint")
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        webhooks_admin::delete(state, &session.caller(), id).await?;
        Ok(see_other("/admin/webhooks?done=deleted"))
    }
}

/// Rotating an endpoint's signing secret: `…/secret/rotate` asks, `POST …/secret` rotates and
/// hands the new secret to the endpoint's reveal page.
struct RotateSecret;

impl Destructive for RotateSecret {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let w = webhooks_admin::get(state, id).await?;
        let overlap = time::span(state.settings.webhooks.secret_overlap.0);
        Ok(Ask::Confirm(Confirmation {
            title: format!("Rotate the signing secret of the endpoint {}?", w.url),
            consequences: vec![
                "A new secret signs every delivery from now on; it is shown once, on the next \
                 page."
                    .into(),
                format!(
                    "The current secret keeps signing alongside it for {overlap} \
                     (webhooks.secret_overlap): each delivery carries both signatures, so \
                     receivers can switch over in that time. After that, receivers still \
                     verifying with it reject every delivery."
                ),
                "A secret older than the current one, if it still signs, stops now.".into(),
            ],
            facts: vec![("Endpoint ID", w.id)],
            ..Confirmation::about("webhooks", id, "secret", "Rotate secret")
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        let rotated = webhooks_admin::rotate_secret(state, &session.caller(), id).await?;
        let endpoint = (Secret::Webhook, id);
        Ok(reveal::hand_over(
            state,
            session,
            endpoint,
            &rotated.secret,
            "rotated",
        ))
    }
}

/// `/admin/webhooks/{id}/secret`: the signing secret just made, once; then that it was shown.
async fn reveal_secret(
    req: HttpRequest,
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<HttpResponse, PageError> {
    let webhook = webhooks_admin::get(&state, &id).await?;
    let (secret, removal) = reveal::take(&req, &state, &session, (Secret::Webhook, &id));
    let segment = url_segment(&webhook.id);
    let overlap = time::span(state.settings.webhooks.secret_overlap.0);
    let (title, note) = if query.is("rotated") {
        (
            "New signing secret",
            format!(
                "The previous secret keeps signing alongside it for {overlap}: until then each \
                 delivery to {} carries both signatures, so receivers can switch over.",
                webhook.url
            ),
        )
    } else {
        (
            if query.is("created") {
                "Endpoint created"
            } else {
                "Signing secret"
            },
            format!(
                "Verify the webhook-signature of each delivery to {} with it.",
                webhook.url
            ),
        )
    };
    let page = RevealPage {
        chrome: Chrome::new(&session, "webhooks"),
        title: title.into(),
        secret,
        code_id: "webhook-secret",
        shown: "Copy the signing secret now: it is shown only this once.",
        notes: vec![note],
        gone: "The signing secret was shown once, right after it was made, and is not shown \
               again. If it was not copied, rotate it to get a new one.",
        renew: Link {
            href: format!("/admin/webhooks/{segment}/secret/rotate"),
            label: "Rotate secret…",
        },
        snippet: None,
        next: Link {
            href: format!("/admin/webhooks/{segment}"),
            label: "Open the endpoint to send a test ping",
        },
    };
    removal.with(&page)
}

async fn test_ping(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    webhooks_admin::test_ping(&state, &form.session.caller(), &id).await?;
    Ok(back_to("/admin/webhooks", &id, "pinged"))
}

async fn replay(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    let (id, delivery) = path.into_inner();
    webhooks_admin::replay(&state, &form.session.caller(), &id, delivery).await?;
    Ok(back_to("/admin/webhooks", &id, "replayed"))
}
