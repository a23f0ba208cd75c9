//! `/admin/users`: search users, and a user's page with its identities, disable/enable and
//! "end sessions". Same service as the API.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::{Chrome, Done, back_to, form_status, link, render};
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
            let q = query.q.unwrap_or_default();
            let next = |cursor: String| link("/admin/users", &[("q", &q), ("cursor", &cursor)]);
            page.next = found.next_cursor.map(next);
            page.users = found.items;
        }
        Err(errors) => page.errors = errors,
    }
    render(form_status(&page.errors), &page)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    chrome: Chrome,
    user: UserDetail,
    notice: Option<&'static str>,
}

async fn user_page(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<Done>,
) -> Result<UserPage, PageError> {
    Ok(UserPage {
        chrome: Chrome::new(&session, "users"),
        user: users_admin::get(&state, &id).await?,
        notice: query.notice(&[
            ("disabled", "The user was disabled; its sessions ended."),
            ("enabled", "The user was enabled."),
            (
                "sessions_ended",
                "The user's sessions ended and its refresh tokens were revoked.",
            ),
        ]),
    })
}

async fn disable(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    match users_admin::disable(&state, &form.session.caller(), &id).await {
        // A second click (another tab) finds it done: show the page as it is.
        Ok(_) | Err(UserAdminError::AlreadyDisabled) => {
            Ok(back_to("/admin/users", &id, "disabled"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn enable(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    match users_admin::enable(&state, &form.session.caller(), &id).await {
        Ok(()) | Err(UserAdminError::NotDisabled) => Ok(back_to("/admin/users", &id, "enabled")),
        Err(e) => Err(e.into()),
    }
}

async fn end_sessions(
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Protected<NoFields>,
) -> Result<HttpResponse, PageError> {
    users_admin::end_sessions(&state, &form.session.caller(), &id).await?;
    Ok(back_to("/admin/users", &id, "sessions_ended"))
}
