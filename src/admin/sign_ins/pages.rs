//! `/admin/sign-ins`: the sign-in events page, with the same filters as the API.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, form_status, link, render};
use crate::admin::http::validation::FieldErrors;
use crate::admin::sign_ins::service::{self as sign_ins, SignIn, SignInParams};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sign-ins", web::get().to(sign_ins_page));
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/sign_ins.html")]
pub struct SignInsPage {
    chrome: Chrome,
    filters: SignInParams,
    /// The configured providers' ids, for the provider select.
    providers: Vec<String>,
    errors: FieldErrors,
    entries: Vec<SignIn>,
    next: Option<String>,
}

impl SignInsPage {
    fn outcome(&self) -> &str {
        self.filters.value(&self.filters.outcome)
    }

    fn provider(&self) -> &str {
        self.filters.value(&self.filters.provider)
    }

    fn client_id(&self) -> &str {
        self.filters.value(&self.filters.client_id)
    }

    /// A provider filtered on that is not configured (any more): still offered, as selected.
    fn other_provider(&self) -> Option<&str> {
        let p = self.provider();
        (!p.is_empty() && !self.providers.iter().any(|id| id == p)).then_some(p)
    }
}

async fn sign_ins_page(
    session: AdminSession,
    state: web::Data<AppState>,
    params: web::Query<SignInParams>,
) -> Result<HttpResponse, PageError> {
    let filters = params.into_inner();
    let providers = crate::providers::repo::all(&state.store).await?;
    let mut page = SignInsPage {
        chrome: Chrome::new(&session, "sign-ins"),
        filters: filters.clone(),
        providers: providers.into_iter().map(|p| p.id.to_string()).collect(),
        errors: FieldErrors::new(),
        entries: Vec::new(),
        next: None,
    };
    match filters.parse() {
        Ok(query) => {
            let found = sign_ins::list(&state.store, &query).await?;
            page.next = found.next_cursor.map(|cursor| {
                let v = |raw: &Option<String>| raw.clone().unwrap_or_default();
                link(
                    "/admin/sign-ins",
                    &[
                        ("outcome", &v(&filters.outcome)),
                        ("provider", &v(&filters.provider)),
                        ("client_id", &v(&filters.client_id)),
                        ("limit", &v(&filters.limit)),
                        ("cursor", &cursor),
                    ],
                )
            });
            page.entries = found.items;
        }
        Err(errors) => page.errors = errors,
    }
    render(form_status(&page.errors), &page)
}
