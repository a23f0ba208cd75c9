//! `/admin/api/v1/keys`: the published signing keys, and their rotation.

use actix_web::web;

use crate::admin::http::api::{ApiCaller, PageParams, resource};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::admin::keys::service::{self as keys_admin, KeyInfo, Rotated};
use crate::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(resource("/keys").get(list_keys))
        .service(resource("/keys/rotate").post(rotate_keys))
}

/// Signing keys still published in the JWKS, newest first. Never any private material.
#[utoipa::path(
    get, path = "/keys", tag = "keys",
    params(PageParams),
    responses(
        (status = 200, description = "One page of keys", body = Page<KeyInfo>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
)]
pub async fn list_keys(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<Page<KeyInfo>>, ApiError> {
    let page = params.parse()?;
    Ok(web::Json(keys_admin::list(&state, &page).await?))
}

/// Adds a new signing key per algorithm; the old ones stay published until the tokens they
/// signed have expired.
#[utoipa::path(
    post, path = "/keys/rotate", tag = "keys",
    responses(
        (status = 200, description = "The new keys", body = Rotated),
    ),
)]
pub async fn rotate_keys(
    api: ApiCaller,
    state: web::Data<AppState>,
) -> Result<web::Json<Rotated>, ApiError> {
    Ok(web::Json(
        keys_admin::rotate(&state.keys, &state.store, &api.caller).await?,
    ))
}
