//! `/admin/users`: search users, and a user's page with its identities, disable/enable and
//! "end sessions" (disabling and ending sessions ask first), unlinking an identity and moving
//! another user's identity to this user (both ask first). Same service as the API.

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::csrf::{NoFields, Protected};
use crate::admin::http::error::PageError;
use crate::admin::http::pages::confirmation_page;
use crate::admin::http::pages::{Ask, Chrome, Confirmation, Destructive, Done, asks_first};
use crate::admin::http::pages::{back_to, form_status, link, render, url_segment};
use crate::admin::http::validation::FieldErrors;
use crate::admin::users::service::{
    self as users_admin, UserAdminError, UserDetail, UserParams, UserView,
};
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(users_page))
        .route("/users/{id}", web::get().to(user_page))
        .route("/users/{id}/enable", web::post().to(enable));
    asks_first::<Disable>(cfg, "/users/{id}/disable", "/users/{id}/disable");
    let end = "/users/{id}/sessions/end";
    asks_first::<EndSessions>(cfg, end, end);
    let unlink = "/identities/{id}/unlink";
    asks_first::<Unlink>(cfg, unlink, unlink);
    cfg.route("/users/{id}/identities/move", web::get().to(ask_move))
        .route("/users/{id}/identities/move", web::post().to(do_move));
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
            (
                "unlinked",
                "The identity was unlinked; its upstream tokens, refresh tokens and sessions \
                 ended.",
            ),
            (
                "moved",
                "The identity was moved to this user; what it carried for the other user \
                 ended.",
            ),
        ]),
    })
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

/// A question about the user, named by its e-mail (or name, or id), with what ending its
/// sessions does (disabling does it too) and what is live now.
fn ending(u: &UserDetail, verb: &str, path: &str, button: &'static str) -> Confirmation {
    let user = &u.user;
    let named = user
        .email
        .as_ref()
        .or(user.name.as_ref())
        .unwrap_or(&user.id);
    let mut facts = vec![("User ID", user.id.clone())];
    facts.extend(user.email.clone().map(|e| ("E-mail", e)));
    facts.extend(user.name.clone().map(|n| ("Name", n)));
    Confirmation {
        title: format!("{verb} the user {named}?"),
        facts,
        consequences: vec![
            format!(
                "Its live SSO sessions end now ({}), each recorded as a session.ended event.",
                u.active_sessions
            ),
            format!(
                "Its refresh tokens are revoked ({}): applications can no longer renew its \
                 tokens.",
                u.active_refresh_tokens
            ),
            "The access tokens already issued are refused from now on by /userinfo, \
             /introspect and the broker; services that check the JWTs themselves accept them \
             until they expire."
                .into(),
        ],
        ..Confirmation::about("users", &user.id, path, button)
    }
}

/// Disabling a user.
struct Disable;

impl Destructive for Disable {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let user = users_admin::get(state, id).await?;
        if user.user.disabled {
            // A second click (another tab) finds it done: show the page as it is.
            return Ok(Ask::Done(back_to("/admin/users", id, "disabled")));
        }
        let mut c = ending(&user, "Disable", "disable", "Disable user");
        c.consequences.push(
            "The user cannot sign in, refresh tokens or use /userinfo until enabled again; \
             enabling brings none of this back."
                .into(),
        );
        Ok(Ask::Confirm(c))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        match users_admin::disable(state, &session.caller(), id).await {
            Ok(_) | Err(UserAdminError::AlreadyDisabled) => {
                Ok(back_to("/admin/users", id, "disabled"))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Ending a user's sessions ("sign out everywhere").
struct EndSessions;

impl Destructive for EndSessions {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let user = users_admin::get(state, id).await?;
        let verb = "End the sessions of";
        let mut c = ending(&user, verb, "sessions/end", "End sessions");
        c.consequences
            .push("The user can sign in again at once: it is not disabled.".into());
        Ok(Ask::Confirm(c))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        users_admin::end_sessions(state, &session.caller(), id).await?;
        Ok(back_to("/admin/users", id, "sessions_ended"))
    }
}

/// Unlinking one identity from its user; the object is the identity (`/admin/identities/{id}`),
/// whose page is its user's.
struct Unlink;

impl Destructive for Unlink {
    async fn ask(state: &AppState, id: &str) -> Result<Ask, PageError> {
        let user_id = users_admin::owner_of_identity(state, id).await?;
        let user = users_admin::get(state, &user_id).await?;
        let Some(identity) = user.identities.iter().find(|i| i.id == id) else {
            return Err(PageError::NotFound);
        };
        if user.identities.len() <= 1 {
            return Err(UserAdminError::LastIdentity.into());
        }
        let named = user.user.email.as_ref().unwrap_or(&user.user.id);
        let mut facts = vec![
            ("User", named.clone()),
            ("Provider", identity.provider.clone()),
            ("Subject", identity.subject.clone()),
        ];
        facts.extend(
            identity
                .email
                .clone()
                .map(|e| ("E-mail at the provider", e)),
        );
        let page = format!("/admin/users/{}", url_segment(&user_id));
        Ok(Ask::Confirm(Confirmation {
            title: format!("Unlink the {} identity of {named}?", identity.provider),
            facts,
            consequences: vec![
                "The user can no longer sign in through this provider account; signing in \
                 with it again would create a new user."
                    .into(),
                "Its upstream tokens are deleted from the vault: the broker can no longer \
                 serve them."
                    .into(),
                "The refresh tokens issued from it are revoked and the SSO sessions that came \
                 through it end."
                    .into(),
                "The user keeps its other identities; it can connect this account again from \
                 its account page."
                    .into(),
            ],
            action: format!("/admin/identities/{}/unlink", url_segment(id)),
            button: "Unlink identity",
            cancel: page,
            section: "users",
        }))
    }

    async fn act(
        state: &AppState,
        session: &AdminSession,
        id: &str,
    ) -> Result<HttpResponse, PageError> {
        let user_id = users_admin::owner_of_identity(state, id).await?;
        users_admin::unlink_identity(state, &session.caller(), &user_id, id).await?;
        Ok(back_to("/admin/users", &user_id, "unlinked"))
    }
}

/// `?identity=`: the identity to move to the user of the path.
#[derive(Debug, Deserialize)]
struct MoveQuery {
    #[serde(default)]
    identity: String,
}

/// The confirmation form of a move (`confirm=yes`).
#[derive(Debug, Deserialize)]
struct MoveForm {
    #[serde(default)]
    confirm: String,
}

/// The question before moving identity `identity_id` to user `id`: who loses it and what ends.
async fn move_question(
    state: &AppState,
    id: &str,
    identity_id: &str,
) -> Result<Confirmation, PageError> {
    let to = users_admin::get(state, id).await?;
    let identity_id = identity_id.trim();
    let from_id = users_admin::owner_of_identity(state, identity_id).await?;
    let from = users_admin::get(state, &from_id).await?;
    let Some(identity) = from.identities.iter().find(|i| i.id == identity_id) else {
        return Err(PageError::NotFound);
    };
    let name = |u: &UserDetail| u.user.email.clone().unwrap_or_else(|| u.user.id.clone());
    let (to_named, from_named) = (name(&to), name(&from));
    let kept = from.identities.len().saturating_sub(1);
    Ok(Confirmation {
        title: format!(
            "Move the {} identity of {from_named} to {to_named}?",
            identity.provider
        ),
        facts: vec![
            ("From user", format!("{from_named} ({})", from.user.id)),
            ("To user", format!("{to_named} ({})", to.user.id)),
            ("Provider", identity.provider.clone()),
            ("Subject", identity.subject.clone()),
        ],
        consequences: vec![
            format!(
                "The identity leaves {from_named}: its sessions and refresh tokens that came \
                 through it end, and its upstream tokens are deleted from the vault."
            ),
            format!("{from_named} keeps {kept} other identities."),
            format!("Signing in through this provider account signs in as {to_named} from now on."),
        ],
        action: link(
            &format!("/admin/users/{}/identities/move", url_segment(id)),
            &[("identity", identity_id)],
        ),
        button: "Move identity",
        cancel: format!("/admin/users/{}", url_segment(id)),
        section: "users",
    })
}

async fn ask_move(
    session: AdminSession,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<MoveQuery>,
) -> Result<HttpResponse, PageError> {
    let c = move_question(&state, &id, &query.identity).await?;
    confirmation_page(&session, c)
}

async fn do_move(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<MoveQuery>,
    form: Protected<MoveForm>,
) -> Result<HttpResponse, PageError> {
    let Protected { session, form } = form;
    let identity_id = query.identity.trim();
    if form.confirm != "yes" {
        let c = move_question(&state, &id, identity_id).await?;
        return confirmation_page(&session, c);
    }
    users_admin::move_identity(&state, &session.caller(), &id, identity_id).await?;
    Ok(back_to("/admin/users", &id, "moved"))
}
