//! `/admin/api/v1/webhooks`: the JSON face of [`crate::admin::webhooks::service`].

use actix_web::{HttpResponse, web};

use crate::admin::http::api::{ApiCaller, PageParams, resource};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::admin::webhooks::service::{
    self as webhooks_admin, DeliveryDetail, DeliveryParams, DeliveryView, WebhookInput,
    WebhookView, WebhookWithSecret,
};
use crate::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(resource("/webhooks").get(list).post(create))
        .service(
            resource("/webhooks/{id}")
                .get(show)
                .put(update)
                .delete(delete),
        )
        .service(resource("/webhooks/{id}/secret").post(rotate_secret))
        .service(resource("/webhooks/{id}/test").post(test_ping))
        .service(resource("/webhooks/{id}/deliveries").get(deliveries))
        .service(resource("/webhooks/{id}/deliveries/{delivery}").get(delivery))
        .service(resource("/webhooks/{id}/deliveries/{delivery}/retry").post(retry))
}

/// Webhook endpoints, newest first, with their delivery health; never a secret.
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks",
    params(PageParams),
    responses(
        (status = 200, description = "One page of endpoints", body = Page<WebhookView>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
)]
pub async fn list(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<Page<WebhookView>>, ApiError> {
    let page = params.parse()?;
    Ok(web::Json(webhooks_admin::list(&state, &page).await?))
}

/// Adds an endpoint. Its signing secret (`whsec_…`) is in this response only.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks",
    request_body = WebhookInput,
    responses(
        (status = 201, description = "The endpoint and its secret, shown once", body = WebhookWithSecret),
        (status = 422, description = "Invalid fields (a URL the SSRF guard refuses, unknown events)", body = ErrorBody),
    ),
)]
pub async fn create(
    api: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    let valid = body.validate(&state)?;
    let created = webhooks_admin::create(&state, &api.caller, valid).await?;
    Ok(HttpResponse::Created().json(created))
}

/// One endpoint with its delivery health.
#[utoipa::path(
    get, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
)]
pub async fn show(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<WebhookView>, ApiError> {
    Ok(web::Json(webhooks_admin::get(&state, &id).await?))
}

/// Replaces an endpoint's URL and events; `enabled` and `description` change when given.
/// Enabling clears the reason Portico disabled it and its run of failures.
#[utoipa::path(
    put, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = WebhookInput,
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 409, description = "Managed by the configuration file", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
)]
pub async fn update(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<WebhookInput>,
) -> Result<web::Json<WebhookView>, ApiError> {
    let valid = body.validate(&state)?;
    let updated = webhooks_admin::update(&state, &api.caller, &id, valid).await?;
    Ok(web::Json(updated))
}

/// Deletes an endpoint with its delivery log; pending deliveries to it are dropped.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 409, description = "Managed by the configuration file", body = ErrorBody),
    ),
)]
pub async fn delete(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    webhooks_admin::delete(&state, &api.caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the signing secret; the new one is in this response only. The old secret also
/// signs (a second `v1,` signature) for `webhooks.secret_overlap`.
#[utoipa::path(
    post, path = "/webhooks/{id}/secret", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint and its new secret, shown once", body = WebhookWithSecret),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 409, description = "The secret is set in the configuration file", body = ErrorBody),
    ),
)]
pub async fn rotate_secret(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<WebhookWithSecret>, ApiError> {
    Ok(web::Json(
        webhooks_admin::rotate_secret(&state, &api.caller, &id).await?,
    ))
}

/// Queues a `webhook.test` event for this endpoint only (even a disabled one). The delivery
/// appears in the endpoint's log.
#[utoipa::path(
    post, path = "/webhooks/{id}/test", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 202, description = "The queued delivery", body = DeliveryView),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
)]
pub async fn test_ping(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let delivery = webhooks_admin::test_ping(&state, &api.caller, &id).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}

/// The endpoint's delivery log, newest first.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), DeliveryParams),
    responses(
        (status = 200, description = "One page of deliveries", body = Page<DeliveryView>),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 422, description = "Bad status, limit or cursor", body = ErrorBody),
    ),
)]
pub async fn deliveries(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<DeliveryParams>,
) -> Result<web::Json<Page<DeliveryView>>, ApiError> {
    let query = params.parse()?;
    Ok(web::Json(
        webhooks_admin::deliveries(&state, &id, &query).await?,
    ))
}

/// One delivery with every attempt (status code, latency, the start of the answer).
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries/{delivery}", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("delivery" = i64, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetail),
        (status = 404, description = "No such endpoint or delivery", body = ErrorBody),
    ),
)]
pub async fn delivery(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<web::Json<DeliveryDetail>, ApiError> {
    let (id, delivery_id) = path.into_inner();
    Ok(web::Json(
        webhooks_admin::delivery(&state, &id, delivery_id).await?,
    ))
}

/// Queues a finished delivery again, now, for a new round of attempts with the same
/// `webhook-id`. A delivery still pending is returned as it is.
#[utoipa::path(
    post, path = "/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("delivery" = i64, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 200, description = "The delivery, pending again", body = DeliveryView),
        (status = 404, description = "No such endpoint or delivery", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
    ),
)]
pub async fn retry(
    api: ApiCaller,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<web::Json<DeliveryView>, ApiError> {
    let (id, delivery_id) = path.into_inner();
    Ok(web::Json(
        webhooks_admin::replay(&state, &api.caller, &id, delivery_id).await?,
    ))
}
