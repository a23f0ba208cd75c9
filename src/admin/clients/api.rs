//! `/admin/api/v1/clients`: the JSON face of [`crate::admin::clients::service`].

use actix_web::{HttpResponse, web};

use crate::admin::clients::service::{
    self as clients_admin, ClientInput, ClientView, ClientWithSecret,
};
use crate::admin::http::api::{ApiCaller, PageParams};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(
            crate::admin::http::api::resource("/clients")
                .get(list)
                .post(create),
        )
        .service(
            crate::admin::http::api::resource("/clients/{id}")
                .get(show)
                .put(update)
                .delete(delete),
        )
        .service(crate::admin::http::api::resource("/clients/{id}/secret").post(rotate_secret))
}

/// Clients, newest first; never a secret.
#[utoipa::path(
    get, path = "/clients", tag = "clients",
    params(PageParams),
    responses(
        (status = 200, description = "One page of clients", body = Page<ClientView>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
)]
pub async fn list(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<Page<ClientView>>, ApiError> {
    let page = params.parse()?;
    Ok(web::Json(clients_admin::list(&state, &page).await?))
}

/// Registers a client. A confidential client's secret is in this response only.
#[utoipa::path(
    post, path = "/clients", tag = "clients",
    request_body = ClientInput,
    responses(
        (status = 201, description = "The client and its secret, shown once", body = ClientWithSecret),
        (status = 409, description = "The client_id is taken", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
)]
pub async fn create(
    api: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<ClientInput>,
) -> Result<HttpResponse, ApiError> {
    let new = body.validate(None)?;
    let created = clients_admin::create(&state, &api.caller, &new).await?;
    Ok(HttpResponse::Created().json(created))
}

/// One client.
#[utoipa::path(
    get, path = "/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client", body = ErrorBody),
    ),
)]
pub async fn show(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<ClientView>, ApiError> {
    let client = clients_admin::get(&state, &id).await?;
    Ok(web::Json(client))
}

/// Replaces a client's name, URIs, grant types, scopes, allowed providers and resources, the
/// development flag, the claims it receives and its group filter.
#[utoipa::path(
    put, path = "/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    request_body = ClientInput,
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client", body = ErrorBody),
        (status = 409, description = "Managed by the configuration file", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
)]
pub async fn update(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ClientInput>,
) -> Result<web::Json<ClientView>, ApiError> {
    let current = clients_admin::get(&state, &id).await?;
    let new = body.validate(Some(&current))?;
    let client = clients_admin::update(&state, &api.caller, &new).await?;
    Ok(web::Json(client))
}

/// Deletes a client and revokes the refresh tokens issued to it.
#[utoipa::path(
    delete, path = "/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such client", body = ErrorBody),
        (status = 409, description = "Managed by the configuration file", body = ErrorBody),
    ),
)]
pub async fn delete(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    clients_admin::delete(&state, &api.caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces a confidential client's secret; the new one is in this response only.
#[utoipa::path(
    post, path = "/clients/{id}/secret", tag = "clients",
    params(("id" = String, Path, description = "The client_id")),
    responses(
        (status = 200, description = "The client and its new secret, shown once", body = ClientWithSecret),
        (status = 404, description = "No such client", body = ErrorBody),
        (status = 409, description = "Managed by the configuration file", body = ErrorBody),
        (status = 422, description = "A public client has no secret", body = ErrorBody),
    ),
)]
pub async fn rotate_secret(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<ClientWithSecret>, ApiError> {
    let rotated = clients_admin::rotate_secret(&state, &api.caller, &id).await?;
    Ok(web::Json(rotated))
}
