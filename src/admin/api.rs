//! The admin JSON API under `/admin/api/v1`, authenticated by `Authorization: Bearer pat_…`.
//!
//! Each handler is annotated with `#[utoipa::path]` and listed in [`super::openapi`], so the
//! OpenAPI document is generated from the code it describes.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;

use super::api_tokens::{self, ApiToken, Authenticated, MintedToken, NewToken, TokenError};
use super::audit::{self, AuditEntry, AuditParams};
use super::error::{ApiError, ErrorBody};
use super::keys_admin::{self, KeyInfo, Rotated};
use super::pagination::{Page, PageRequest};
use super::validation::FieldErrors;
use super::{Caller, openapi};
use crate::ops::client_ip::client_ip_text as peer_ip;
use crate::state::AppState;
use secrecy::ExposeSecret;

pub fn scope() -> actix_web::Scope {
    let scope =
        web::scope("/api/v1")
            .app_data(web::JsonConfig::default().error_handler(|err, _| {
                ApiError::BadRequest(format!("the JSON body is unreadable: {err}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|err, _| {
                ApiError::NotFound(format!("no such resource: {err}")).into()
            }))
            .service(resource("/openapi.json").get(openapi::document))
            .service(resource("/keys").get(list_keys))
            .service(resource("/keys/rotate").post(rotate_keys))
            .service(resource("/audit").get(list_audit))
            .service(resource("/tokens").get(list_tokens).post(create_token))
            .service(resource("/tokens/{id}/revoke").post(revoke_token));
    let scope = super::providers_api::routes(scope);
    let scope = super::clients_api::routes(scope);
    let scope = super::webhooks_api::routes(scope);
    let scope = super::users_api::routes(scope);
    scope.default_service(web::to(not_found))
}

/// A resource whose other methods get a JSON 405.
pub(super) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}

/// The admin API token behind a request.
pub struct ApiCaller {
    pub token: ApiToken,
    pub caller: Caller,
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let presented = crate::ops::bearer::token(req).map(str::to_owned);
        let ip = peer_ip(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no app state")))?;
            let presented = presented.ok_or(ApiError::Unauthorized)?;
            match api_tokens::authenticate(&state.store, &presented).await? {
                Authenticated::Valid(token) => Ok(ApiCaller {
                    caller: Caller {
                        actor: token.actor(),
                        ip,
                    },
                    token,
                }),
                Authenticated::Unknown => Err(ApiError::Unauthorized),
                Authenticated::Revoked => Err(ApiError::Revoked),
            }
        })
    }
}

/// `limit` and `cursor` from a list's query string.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 200; default 50.
    pub limit: Option<String>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub(super) fn parse(&self) -> Result<PageRequest, ApiError> {
        let mut errors = FieldErrors::new();
        let page = PageRequest::parse(self.limit.as_deref(), self.cursor.as_deref(), &mut errors);
        Ok(errors.or_ok(page)?)
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "there is no admin API endpoint {} {}",
        req.method(),
        req.path()
    )))
}

/// Signing keys still published in the JWKS, newest first. Never any private material.
#[utoipa::path(
    get, path = "/keys", tag = "keys",
    params(PageParams),
    responses(
        (status = 200, description = "One page of keys", body = Page<KeyInfo>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Revoked token", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
    security(("bearer" = []))
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
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Revoked token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_keys(
    api: ApiCaller,
    state: web::Data<AppState>,
) -> Result<web::Json<Rotated>, ApiError> {
    Ok(web::Json(
        keys_admin::rotate(&state.keys, &state.store, &api.caller).await?,
    ))
}

/// The audit log, newest first, filtered by action (`type`), user, actor and time.
#[utoipa::path(
    get, path = "/audit", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "One page of entries", body = Page<AuditEntry>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Revoked token", body = ErrorBody),
        (status = 422, description = "Bad filters", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_audit(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<web::Json<Page<AuditEntry>>, ApiError> {
    let query = params.parse()?;
    Ok(web::Json(audit::list(&state.store, &query).await?))
}

/// Admin API tokens, newest first; never the tokens themselves.
#[utoipa::path(
    get, path = "/tokens", tag = "tokens",
    params(PageParams),
    responses(
        (status = 200, description = "One page of tokens", body = Page<ApiToken>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Revoked token", body = ErrorBody),
        (status = 422, description = "Bad limit or cursor", body = ErrorBody),
    ),
    security(("bearer" = []))
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
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Revoked token", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_token(
    api: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let name = body.validate()?;
    let (info, token) = api_tokens::mint(&state.store, &api.caller, &name)
        .await
        .map_err(token_error)?;
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
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Revoked token", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 409, description = "Already revoked", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    api: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<ApiToken>, ApiError> {
    let token = api_tokens::revoke(&state.store, &api.caller, &id)
        .await
        .map_err(token_error)?;
    Ok(web::Json(token))
}

fn token_error(err: TokenError) -> ApiError {
    match err {
        TokenError::NotFound(_) => ApiError::NotFound(err.to_string()),
        TokenError::AlreadyRevoked(_) => ApiError::Conflict(err.to_string()),
        TokenError::Store(e) => e.into(),
    }
}
