//! The admin web UI: server-rendered askama pages that work without JavaScript.
//!
//! Reads are GET pages behind [`AdminSession`]; every change is a POST through
//! [`Protected`], which checks the session's CSRF token before the handler runs.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::assets;
use crate::admin::http::csrf::Protected;
use crate::admin::http::error::{Classify, PageError, form_errors};
use crate::admin::http::validation::FieldErrors;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(crate::admin::dashboard::dashboard))
        .route("/", web::get().to(crate::admin::dashboard::dashboard))
        .configure(crate::admin::auth::pages::routes)
        .configure(crate::admin::keys::pages::routes)
        .configure(crate::admin::audit::pages::routes)
        .configure(crate::admin::tokens::pages::routes);
}

#[derive(Template)]
#[template(path = "admin/not_found.html")]
struct NotFoundPage {
    chrome: Chrome,
}

/// Any path under `/admin` that nothing serves: a 404 page in the admin layout, or before
/// signing in the plain error page.
pub async fn not_found(
    session: Result<AdminSession, PageError>,
) -> Result<HttpResponse, PageError> {
    match session {
        Ok(session) => render(
            StatusCode::NOT_FOUND,
            &NotFoundPage {
                chrome: Chrome::new(&session, ""),
            },
        ),
        Err(PageError::SignInRequired) => Err(PageError::NotFound),
        Err(e) => Err(e),
    }
}

/// What the layout around every signed-in page needs.
pub struct Chrome {
    pub email: String,
    pub csrf: String,
    /// The nav entry to highlight.
    pub active: &'static str,
    pub css: String,
    pub js: String,
}

impl Chrome {
    pub fn new(session: &AdminSession, active: &'static str) -> Self {
        Self {
            email: session.admin.email.clone(),
            csrf: session.csrf.clone(),
            active,
            css: assets::url("admin.css"),
            js: assets::url("copy.js"),
        }
    }

    /// A time from an API view (RFC 3339) as every admin page shows times:
    /// `{{ chrome.when(view.created_at) }}`.
    pub fn when(&self, rfc3339: &str) -> String {
        crate::admin::http::time::display_rfc3339(rfc3339)
    }
}

/// Renders a page with `status` (a handler that always answers 200 returns its page as it is).
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// 200, or 422 when the form on the page shows errors.
pub(crate) fn form_status(errors: &FieldErrors) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// A form's change: `change` runs on the valid input. The input's own errors, or the service's
/// refusal when it is about a field, come back as `Err` to show on the form again; any other
/// failure is the page's error.
pub(crate) async fn submit<V, T, E: Classify>(
    input: Result<V, FieldErrors>,
    change: impl AsyncFnOnce(V) -> Result<T, E>,
) -> Result<Result<T, FieldErrors>, PageError> {
    match input {
        Ok(valid) => match change(valid).await {
            Ok(done) => Ok(Ok(done)),
            Err(e) => Ok(Err(form_errors(e)?)),
        },
        Err(errors) => Ok(Err(errors)),
    }
}

/// What a destructive or breaking action does, asked before it is done: the object, named, and
/// the consequence. Its page posts back with `confirm=yes`.
pub(crate) struct Confirmation {
    /// The question, naming the object: "Delete the client “Wiki”?".
    pub(crate) title: String,
    /// What identifies the object: label and value.
    pub(crate) facts: Vec<(&'static str, String)>,
    /// What happens, one sentence each.
    pub(crate) consequences: Vec<String>,
    /// Where the confirmed form posts.
    pub(crate) action: String,
    /// The confirming button's label.
    pub(crate) button: &'static str,
    /// Where Cancel goes: the object's page.
    pub(crate) cancel: String,
    /// The nav entry to highlight.
    pub(crate) section: &'static str,
}

impl Confirmation {
    /// A question about the object `id` of the admin section `section` (`clients`, …): posted to
    /// `/admin/{section}/{id}/{path}` with the label `button`, cancelled back to the object's
    /// page. The caller says the rest.
    pub(crate) fn about(section: &'static str, id: &str, path: &str, button: &'static str) -> Self {
        let page = format!("/admin/{section}/{}", url_segment(id));
        Self {
            title: String::new(),
            facts: Vec::new(),
            consequences: Vec::new(),
            action: format!("{page}/{path}"),
            button,
            cancel: page,
            section,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    c: Confirmation,
}

/// The confirmation page (200): the question, the object, the consequence, a CSRF-protected
/// form that confirms and a Cancel link.
pub(crate) fn confirmation_page(
    session: &AdminSession,
    c: Confirmation,
) -> Result<HttpResponse, PageError> {
    let chrome = Chrome::new(session, c.section);
    render(StatusCode::OK, &ConfirmPage { chrome, c })
}

/// What an action that asks first finds, before asking.
pub(crate) enum Ask {
    /// The question to put.
    Confirm(Confirmation),
    /// Nothing to ask (it is done already): the answer, a redirect to the object's page.
    Done(HttpResponse),
}

/// A destructive or breaking action of the UI on the object `{id}`. [`asks_first`] serves it:
/// a GET shows its confirmation page; a POST does it only with the page's `confirm=yes`, and
/// without it (an old form, a scripted post) answers with the same page and changes nothing.
pub(crate) trait Destructive {
    /// The question about the object `id` as it is now, or the answer when there is nothing to
    /// ask. An object that cannot be changed here (declared in portico.toml) is an error.
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError>;

    /// Does it: confirmed, and the question still stands.
    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError>;
}

/// Registers `A`: its confirmation page at `page` (GET) and the action at `action` (POST).
pub(crate) fn asks_first<A: Destructive + 'static>(
    cfg: &mut web::ServiceConfig,
    page: &str,
    action: &str,
) {
    cfg.route(page, web::get().to(asking::<A>))
        .route(action, web::post().to(acting::<A>));
}

async fn asking<A: Destructive>(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    match A::ask(&state, &id).await? {
        Ask::Confirm(c) => confirmation_page(&session, c),
        Ask::Done(answer) => Ok(answer),
    }
}

/// The form of an action that asks first: its confirmation page sends `confirm=yes`.
#[derive(Debug, Deserialize)]
pub struct Confirm {
    #[serde(default)]
    confirm: String,
}

async fn acting<A: Destructive>(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<Confirm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    match A::ask(&state, &id).await? {
        Ask::Done(answer) => Ok(answer),
        Ask::Confirm(_) if form.confirm == "yes" => A::act(&state, &session, &id).await,
        Ask::Confirm(c) => confirmation_page(&session, c),
    }
}

/// A form as posted, pair by pair: a checkbox list repeats its name once per ticked box.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct Pairs(pub(crate) Vec<(String, String)>);

impl Pairs {
    /// The first value of `name`, or "".
    pub(crate) fn one(&self, name: &str) -> String {
        self.all(name).into_iter().next().unwrap_or_default()
    }

    /// Every value of `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        let values = self.0.iter().filter(|(k, _)| k == name);
        values.map(|(_, v)| v.clone()).collect()
    }
}

/// `?done=<what>`: the redirect after a change says what was done, for the notice on the page.
#[derive(Deserialize)]
pub(crate) struct Done {
    pub(crate) done: Option<String>,
}

impl Done {
    pub(crate) fn is(&self, what: &str) -> bool {
        self.done.as_deref() == Some(what)
    }

    pub(crate) fn notice(&self, texts: &[(&str, &'static str)]) -> Option<&'static str> {
        notice(self.done.as_deref(), texts)
    }
}

/// The notice on a page for `done` (what the redirect after a change said): its text in `texts`.
pub(crate) fn notice(done: Option<&str>, texts: &[(&str, &'static str)]) -> Option<&'static str> {
    let (_, text) = texts.iter().find(|(what, _)| Some(*what) == done)?;
    Some(text)
}

pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The redirect after a change to one item: its page under `base`, saying what was done.
pub(crate) fn back_to(base: &str, id: &str, done: &str) -> HttpResponse {
    see_other(&format!("{base}/{}?done={done}", url_segment(id)))
}

/// `path` with the `pairs` that are not empty as its query: the link to a list's next page.
pub(crate) fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    format!("{path}?{query}")
}

/// An id as one URL path segment: a link built from it cannot break out of its segment.
pub fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
