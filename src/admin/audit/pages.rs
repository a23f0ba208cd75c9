//! The audit log page: filters, entries, further pages.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::audit::service::{self as audit, AuditEntry, AuditParams};
use crate::admin::auth::session::AdminSession;
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, form_status, render};
use crate::admin::http::validation::FieldErrors;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(audit_page));
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub filters: AuditParams,
    pub errors: FieldErrors,
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

impl AuditPage {
    pub fn value<'a>(&self, raw: &'a Option<String>) -> &'a str {
        raw.as_deref().unwrap_or_default()
    }

    /// The actions the type filter offers.
    pub fn actions(&self) -> &'static [&'static str] {
        crate::audit::ACTIONS
    }

    pub fn action(&self) -> &str {
        self.value(&self.filters.action).trim()
    }

    /// An action asked for that the list does not know (an older one): still selected.
    pub fn other_action(&self) -> Option<&str> {
        let a = self.action();
        (!a.is_empty() && !self.actions().contains(&a)).then_some(a)
    }

    /// The time range as the form shows it (`since`/`until`, or their older names).
    pub fn since(&self) -> &str {
        self.value(self.filters.since_param().1)
    }

    pub fn until(&self) -> &str {
        self.value(self.filters.until_param().1)
    }

    /// The error for the start of the range, under whichever name the request used.
    pub fn since_error(&self) -> Option<&str> {
        self.errors.get(self.filters.since_param().0)
    }

    pub fn until_error(&self) -> Option<&str> {
        self.errors.get(self.filters.until_param().0)
    }
}

async fn audit_page(
    session: AdminSession,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, PageError> {
    let filters = params.into_inner();
    let mut page = AuditPage {
        chrome: Chrome::new(&session, "audit"),
        filters: filters.clone(),
        errors: FieldErrors::new(),
        entries: Vec::new(),
        next: None,
    };
    match filters.parse() {
        Ok(query) => {
            let found = audit::list(&state.store, &query).await?;
            page.next = found.next_cursor.map(|cursor| {
                let mut next = filters.clone();
                next.cursor = Some(cursor);
                format!("/admin/audit?{}", next.query_string())
            });
            page.entries = found.items;
        }
        Err(errors) => page.errors = errors,
    }
    render(form_status(&page.errors), &page)
}
