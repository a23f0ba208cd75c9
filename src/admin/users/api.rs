//! `/admin/api/v1/users`: the JSON face of [`crate::admin::users::service`].

use actix_web::web;

use crate::admin::http::api::{ApiCaller, resource};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::admin::users::service::{
    self as users_admin, IdentityUnlinked, IdentityView, MoveIdentity, SessionsEnded, UserDetail,
    UserParams, UserView,
};
use crate::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(resource("/users").get(list))
        .service(resource("/users/{id}").get(show))
        .service(resource("/users/{id}/disable").post(disable))
        .service(resource("/users/{id}/enable").post(enable))
        .service(resource("/users/{id}/sessions").delete(end_sessions))
        .service(resource("/users/{id}/identities").post(move_identity))
        .service(resource("/users/{id}/identities/{identity_id}").delete(unlink_identity))
}

/// Users, newest first; `q` matches part of an e-mail address or name, or a whole id.
#[utoipa::path(
    get, path = "/users", tag = "users",
    params(UserParams),
    responses(
        (status = 200, description = "One page of users", body = Page<UserView>),
        (status = 422, description = "Bad q, limit or cursor", body = ErrorBody),
    ),
)]
pub async fn list(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<UserParams>,
) -> Result<web::Json<Page<UserView>>, ApiError> {
    let query = params.parse()?;
    Ok(web::Json(users_admin::search(&state, &query).await?))
}

/// One user with its linked identities (provider, subject, e-mail); never a token.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id (the `sub` Portico issues)")),
    responses(
        (status = 200, description = "The user", body = UserDetail),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
)]
pub async fn show(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<UserDetail>, ApiError> {
    Ok(web::Json(users_admin::get(&state, &id).await?))
}

/// Disables a user: no login, refresh or `/userinfo` from now on. Its SSO sessions end
/// (`session.ended`) and its refresh tokens are revoked in the same transaction.
#[utoipa::path(
    post, path = "/users/{id}/disable", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user, disabled", body = UserDetail),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already disabled", body = ErrorBody),
    ),
)]
pub async fn disable(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<UserDetail>, ApiError> {
    users_admin::disable(&state, &api.caller, &id).await?;
    Ok(web::Json(users_admin::get(&state, &id).await?))
}

/// Lets a disabled user log in again.
#[utoipa::path(
    post, path = "/users/{id}/enable", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user, enabled", body = UserDetail),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Not disabled", body = ErrorBody),
    ),
)]
pub async fn enable(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<UserDetail>, ApiError> {
    users_admin::enable(&state, &api.caller, &id).await?;
    Ok(web::Json(users_admin::get(&state, &id).await?))
}

/// Signs the user out everywhere: ends its SSO sessions (a `session.ended` event each) and
/// revokes its refresh tokens. Access tokens already issued run until they expire.
#[utoipa::path(
    delete, path = "/users/{id}/sessions", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "What was ended", body = SessionsEnded),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
)]
pub async fn end_sessions(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<SessionsEnded>, ApiError> {
    Ok(web::Json(
        users_admin::end_sessions(&state, &api.caller, &id).await?,
    ))
}

/// Unlinks one of the user's identities. Refused (409) for the user's last identity. The
/// identity's upstream tokens are deleted from the vault with it; the refresh tokens and codes
/// issued from it are revoked and the SSO sessions that came through it end, with
/// `identity.unlinked` and the audit entry in the same transaction. Admins attach no new
/// identity: the user connects another account from `/account` (an identity that is another
/// user's is moved with `POST /users/{id}/identities`).
#[utoipa::path(
    delete, path = "/users/{id}/identities/{identity_id}", tag = "users",
    params(
        ("id" = String, Path, description = "The user's id"),
        ("identity_id" = String, Path, description = "The identity's id (from the user's `identities`)"),
    ),
    responses(
        (status = 200, description = "What was unlinked and ended", body = IdentityUnlinked),
        (status = 404, description = "No such user, or no such identity of the user", body = ErrorBody),
        (status = 409, description = "The user's last identity", body = ErrorBody),
    ),
)]
pub async fn unlink_identity(
    api: ApiCaller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<web::Json<IdentityUnlinked>, ApiError> {
    let (id, identity_id) = path.into_inner();
    Ok(web::Json(
        users_admin::unlink_identity(&state, &api.caller, &id, &identity_id).await?,
    ))
}

/// Moves an identity from the user that has it to this user: what an admin does when a user's
/// connect was refused because the account is another user's. What the identity carried for
/// the other user ends (refresh tokens, codes, the sessions that came through it, the address
/// verification its provider gave, its upstream tokens); `identity.unlinked` (the other user),
/// `identity.linked` (this user) and the audit entry `identity.moved` commit together.
#[utoipa::path(
    post, path = "/users/{id}/identities", tag = "users",
    params(("id" = String, Path, description = "The user that gets the identity")),
    request_body = MoveIdentity,
    responses(
        (status = 200, description = "The identity, now this user's", body = IdentityView),
        (status = 404, description = "No such user, or no such identity", body = ErrorBody),
        (status = 409, description = "The other user's last identity (give that user another identity or delete it first), this user already has an identity at the provider, or the identity is this user's already", body = ErrorBody),
    ),
)]
pub async fn move_identity(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<MoveIdentity>,
) -> Result<web::Json<IdentityView>, ApiError> {
    Ok(web::Json(
        users_admin::move_identity(&state, &api.caller, &id, &body.identity_id).await?,
    ))
}
