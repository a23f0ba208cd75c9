//! Sign-in events as the admin API and page show them: filters from a query string, one page
//! at a time, newest first.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::admin::http::pagination::{Page, PageRequest};
use crate::admin::http::time;
use crate::admin::http::validation::{FieldErrors, non_empty};
use crate::store::{Store, StoreError};
use crate::webhooks::events::{self, Login, LoginFilter};

/// How a login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
}

/// One login.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignIn {
    /// The event's id (the `webhook-id` its deliveries carry).
    pub id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(skip)]
    pub created_at_secs: i64,
    pub outcome: Outcome,
    /// The provider the login went through (for a failure: whatever the callback URL named).
    pub provider: Option<String>,
    /// The application the user was signing in to, when known.
    pub client_id: Option<String>,
    /// The Portico user, when the login succeeded.
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// Why a failed login failed.
    pub reason: Option<String>,
    /// The client address.
    pub ip: Option<String>,
    /// The id of the request that ended the login: the `x-request-id` answered, the reference
    /// on the user's error page, and the `request_id` of its log lines.
    pub request_id: Option<String>,
}

fn text(data: &Value, name: &str) -> Option<String> {
    data.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl From<Login> for SignIn {
    fn from(l: Login) -> Self {
        let d = &l.data;
        Self {
            created_at: time::rfc3339(l.created_at),
            created_at_secs: l.created_at,
            outcome: if l.succeeded {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            provider: text(d, "provider"),
            client_id: text(d, "client_id"),
            user_id: text(d, "user_id"),
            email: text(d, "email"),
            reason: text(d, "reason"),
            ip: text(d, "ip"),
            request_id: text(d, "request_id"),
            id: l.id,
        }
    }
}

impl SignIn {
    pub fn display_time(&self) -> String {
        time::display(self.created_at_secs)
    }
}

/// The filters as they arrive in a query string (API and page alike).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignInParams {
    /// `succeeded`, `failed`, or `all` (the default).
    pub outcome: Option<String>,
    /// Only logins through this provider (its id).
    pub provider: Option<String>,
    /// Only logins to this client (its `client_id`).
    pub client_id: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// Checked filters and the page asked for.
#[derive(Debug, Clone)]
pub struct SignInQuery {
    pub filter: LoginFilter,
    pub page: PageRequest,
}

/// The longest provider or client id a filter takes.
const MAX_ID: usize = 256;

impl SignInParams {
    pub fn parse(&self) -> Result<SignInQuery, FieldErrors> {
        let mut errors = FieldErrors::new();
        let succeeded = match non_empty(&self.outcome).as_deref() {
            None | Some("all") => None,
            Some("succeeded") => Some(true),
            Some("failed") => Some(false),
            Some(_) => {
                errors.add("outcome", "must be `all`, `succeeded` or `failed`");
                None
            }
        };
        let mut id = |field: &str, raw: &Option<String>| {
            let value = non_empty(raw);
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_ID) {
                errors.add(field, format!("must be at most {MAX_ID} characters"));
            }
            value
        };
        let provider = id("provider", &self.provider);
        let client_id = id("client_id", &self.client_id);
        let page = PageRequest::parse(self.limit.as_deref(), self.cursor.as_deref(), &mut errors);
        errors.or_ok(SignInQuery {
            filter: LoginFilter {
                succeeded,
                provider,
                client_id,
            },
            page,
        })
    }

    /// The value of a filter as the form shows it.
    pub fn value<'a>(&self, raw: &'a Option<String>) -> &'a str {
        raw.as_deref().unwrap_or_default()
    }
}

/// Logins matching `query`, newest first, one page.
pub async fn list(store: &Store, query: &SignInQuery) -> Result<Page<SignIn>, StoreError> {
    let rows = events::logins(
        store,
        &query.filter,
        query.page.cursor.as_ref(),
        query.page.limit + 1,
    )
    .await?;
    let items = rows.into_iter().map(SignIn::from).collect();
    Ok(query.page.of(items, |s| (s.created_at_secs, s.id.clone())))
}
