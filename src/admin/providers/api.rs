//! `/admin/api/v1/providers`: the JSON face of [`crate::admin::providers::service`].

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::admin::http::api::{ApiCaller, PageParams};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::admin::providers::discovery::{
    self as providers_discovery, DiscoveryReport, DiscoveryRequest,
};
use crate::admin::providers::input::ProviderInput;
use crate::admin::providers::service::{
    self as providers_admin, ClaimsPreview, PREVIEW_MAX_BYTES, ProviderView,
};
use crate::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .service(
            crate::admin::http::api::resource("/providers")
                .get(list)
                .post(create),
        )
        // Before `/providers/{id}`: `discover` is a reserved id.
        .service(crate::admin::http::api::resource("/providers/discover").post(discover))
        .service(
            crate::admin::http::api::resource("/providers/{id}")
                .get(show)
                .put(update)
                .delete(delete),
        )
        .service(
            crate::admin::http::api::resource("/providers/{id}/claims-preview")
                .app_data(
                    web::JsonConfig::default()
                        .limit(PREVIEW_MAX_BYTES)
                        .error_handler(|err, _| {
                            ApiError::BadRequest(format!("the JSON body is unreadable: {err}"))
                                .into()
                        }),
                )
                .post(claims_preview),
        )
}

/// An upstream claim set to preview.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PreviewRequest {
    /// The claims as the provider sends them: for oidc and google the ID token's claims merged
    /// with userinfo; for saml an object of attribute name to a list of values; for github
    /// `login`, `name`, `email` and `groups` (organisations and `org:team`).
    #[schema(value_type = Object)]
    pub claims: Value,
}

/// What a login with these upstream claims would yield through this provider: its claim
/// mapping and claims pipeline (prefix, filter, renames, cap, static and extra claims) run as
/// at a login. Changes nothing. The body is at most 64 KiB.
#[utoipa::path(
    post, path = "/providers/{id}/claims-preview", tag = "providers",
    params(("id" = String, Path, description = "The provider id (slug)")),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The claims a login would yield", body = ClaimsPreview),
        (status = 400, description = "Unreadable or too large JSON body", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 422, description = "The claims are not an object, or a login with them is refused", body = ErrorBody),
    ),
)]
pub async fn claims_preview(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<PreviewRequest>,
) -> Result<web::Json<ClaimsPreview>, ApiError> {
    let preview = providers_admin::preview_claims(&state, &id, &body.claims).await?;
    Ok(web::Json(preview))
}

/// Upstream identity providers, newest first; never a client secret.
#[utoipa::path(
    get, path = "/providers", tag = "providers",
    params(PageParams),
    responses(
        (status = 200, description = "One page of providers", body = Page<ProviderView>),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
)]
pub async fn list(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<Page<ProviderView>>, ApiError> {
    let page = params.parse()?;
    Ok(web::Json(providers_admin::list(&state, &page).await?))
}

/// Adds a provider; it offers logins at once. The client secret is stored encrypted and never
/// returned.
#[utoipa::path(
    post, path = "/providers", tag = "providers",
    request_body = ProviderInput,
    responses(
        (status = 201, description = "The provider", body = ProviderView),
        (status = 409, description = "The id is taken", body = ErrorBody),
        (status = 422, description = "Invalid fields (per kind; SAML metadata that does not parse)", body = ErrorBody),
    ),
)]
pub async fn create(
    api: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let others = crate::providers::repo::all(&state.store).await?;
    let new = body
        .validate(None, &others, state.connectors.http())
        .await?;
    let created = providers_admin::create(&state, &api.caller, &new).await?;
    Ok(HttpResponse::Created().json(created))
}

/// One provider.
#[utoipa::path(
    get, path = "/providers/{id}", tag = "providers",
    params(("id" = String, Path, description = "The provider id (slug)")),
    responses(
        (status = 200, description = "The provider", body = ProviderView),
        (status = 404, description = "No such provider", body = ErrorBody),
    ),
)]
pub async fn show(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<ProviderView>, ApiError> {
    Ok(web::Json(providers_admin::get(&state, &id).await?))
}

/// Replaces a provider's settings (not its id or kind). An absent `client_secret` keeps the
/// stored one. Takes effect at the next login.
#[utoipa::path(
    put, path = "/providers/{id}", tag = "providers",
    params(("id" = String, Path, description = "The provider id (slug)")),
    request_body = ProviderInput,
    responses(
        (status = 200, description = "The provider", body = ProviderView),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 409, description = "Managed by the configuration file", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
)]
pub async fn update(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ProviderInput>,
) -> Result<web::Json<ProviderView>, ApiError> {
    let current = providers_admin::editable(&state, &id).await?;
    let others = crate::providers::repo::all(&state.store).await?;
    let new = body
        .validate(Some(&current), &others, state.connectors.http())
        .await?;
    let provider = providers_admin::update(&state, &api.caller, &new).await?;
    Ok(web::Json(provider))
}

/// Deletes a provider. Its users stay; their identities at it are removed, the SSO sessions
/// that came through it end and the refresh tokens issued from those identities are revoked.
#[utoipa::path(
    delete, path = "/providers/{id}", tag = "providers",
    params(("id" = String, Path, description = "The provider id (slug)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 409, description = "Managed by the configuration file", body = ErrorBody),
    ),
)]
pub async fn delete(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    providers_admin::delete(&state, &api.caller, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Fetches `{issuer}/.well-known/openid-configuration` and reports what it offers. An issuer
/// that cannot be reached or serves no readable document is a 422 on `issuer`.
#[utoipa::path(
    post, path = "/providers/discover", tag = "providers",
    request_body = DiscoveryRequest,
    responses(
        (status = 200, description = "What the document says, and any problems", body = DiscoveryReport),
        (status = 422, description = "Bad issuer, or no readable discovery document", body = ErrorBody),
    ),
)]
pub async fn discover(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<DiscoveryRequest>,
) -> Result<web::Json<DiscoveryReport>, ApiError> {
    let report = providers_discovery::discover(state.connectors.http(), &body.issuer).await?;
    Ok(web::Json(report))
}
