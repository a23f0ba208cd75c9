//! `/admin/users`: search users, and a user's page with its identities, disable/enable and
//! "end sessions". Same service as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::url_segment;
use crate::admin::http::pages::{Chrome, Done, render, see_other};
use crate::admin::http::validation::FieldErrors;
use crate::admin::users::service::{
    self as users_admin, UserAdminError, UserDetail, UserParams, UserView,
};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(users_page))
        .route("/users/{id}", web::get().to(user_page))
        .route("/users/{id}/disable", web::post().to(disable))
        .route("/users/{id}/enable", web::post().to(enable))
        .route("/users/{id}/sessions/end", web::post().to(end_sessions));
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    chrome: Chrome,
    q: String,
    users: Vec<UserView>,
    errors: FieldErrors,
    next: Option<String>,
}

async fn users_page(
    session: AdminSession,
    state: web::Data<AppState>,
    params: web::Query<UserParams>,
) -> Result<HttpResponse, PageError> {
    let params = params.into_inner();
    let mut page = UsersPage {
        chrome: Chrome::new(&session, "users"),
        q: params.q.clone().unwrap_or_default(),
        users: Vec::new(),
        errors: FieldErrors::new(),
        next: None,
    };
    match params.parse() {
        Ok(query) => {
            let found = users_admin::search(&state, &query).await?;
            page.next = found.next_cursor.map(|cursor| {
                let q = query.q.clone().unwrap_or_default();
                let pairs: Vec<(&str, &str)> = [("q", q.as_str()), ("cursor", cursor.as_str())]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                format!(
                    "/admin/users?{}",
                    serde_urlencoded::to_string(pairs).unwrap_or_default()
                )
            });
            page.users = found.items;
            render(StatusCode::OK, &page)
        }
        Err(errors) => {
            page.errors = errors;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    chrome: Chrome,
    user: UserDetail,
    notice: Option<String>,
}

async fn user_page(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<UserPage, PageError> {
    let notice = match query.done.as_deref() {
        Some("disabled") => Some("The user was disabled; its sessions ended."),
        Some("enabled") => Some("The user was enabled."),
        Some("sessions_ended") => {
            Some("The user's sessions ended and its refresh tokens were revoked.")
        }
        _ => None,
    };
    Ok(UserPage {
        chrome: Chrome::new(&session, "users"),
        user: users_admin::get(&state, &id).await?,
        notice: notice.map(str::to_owned),
    })
}

/// The user's page after a change, saying what was done.
fn back_to(id: &str, done: &str) -> HttpResponse {
    see_other(&format!("/admin/users/{}?done={done}", url_segment(id)))
}

async fn disable(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    match users_admin::disable(&state, &form.session.caller(), &id).await {
        // A second click (another tab) finds it done: show the page as it is.
        Ok(_) | Err(UserAdminError::AlreadyDisabled) => Ok(back_to(&id, "disabled")),
        Err(e) => Err(e.into()),
    }
}

async fn enable(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    match users_admin::enable(&state, &form.session.caller(), &id).await {
        Ok(()) | Err(UserAdminError::NotDisabled) => Ok(back_to(&id, "enabled")),
        Err(e) => Err(e.into()),
    }
}

async fn end_sessions(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    users_admin::end_sessions(&state, &form.session.caller(), &id).await?;
    Ok(back_to(&id, "sessions_ended"))
}
