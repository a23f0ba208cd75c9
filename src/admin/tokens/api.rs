//! `/admin/api/v1/tokens`: admin API tokens, minted (the token shown once), listed, revoked.

use actix_web::{HttpResponse, web};

use crate::admin::http::api::{ApiCaller, PageParams, resource};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::admin::tokens::service::{self as api_tokens, ApiToken, MintedToken, NewToken};
use crate::state::AppState;
use secrecy::ExposeSecret;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(resource("/tokens").get(list_tokens).post(create_token))
        .service(resource("/tokens/{id}/revoke").post(revoke_token))
}

/// Admin API tokens, newest first; never the tokens themselves.
#[utoipa::path(
    get, path = "/tokens", tag = "tokens",
    params(PageParams),
    responses(
        (status = 200, description = "One page of tokens", body = Page<ApiToken>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
)]
pub async fn list_tokens(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<Page<ApiToken>>, ApiError> {
    let page = params.parse()?;
    Ok(web::Json(api_tokens::list(&state.store, &page).await?))
}

/// Mints an admin API token. The response is the only time the token is shown.
#[utoipa::path(
    post, path = "/tokens", tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "The new token, shown once", body = MintedToken),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
)]
pub async fn create_token(
    api: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let name = body.validate()?;
    let (info, token) = api_tokens::mint(&state.store, &api.caller, &name).await?;
    Ok(HttpResponse::Created().json(MintedToken {
        info,
        token: token.expose_secret().to_owned(),
    }))
}

/// Revokes an admin API token: requests with it get 403 from now on.
#[utoipa::path(
    post, path = "/tokens/{id}/revoke", tag = "tokens",
    params(("id" = String, Path, description = "The token's id (`tok_…`)")),
    responses(
        (status = 200, description = "The revoked token", body = ApiToken),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 409, description = "Already revoked", body = ErrorBody),
    ),
)]
pub async fn revoke_token(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<ApiToken>, ApiError> {
    let token = api_tokens::revoke(&state.store, &api.caller, &id).await?;
    Ok(web::Json(token))
}
