//! The admin JSON API under `/admin/api/v1`, authenticated by `Authorization: Bearer pat_…`.
//!
//! Each handler is annotated with `#[utoipa::path]` and listed in [`crate::admin::openapi`], so the
//! OpenAPI document is generated from the code it describes.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;

use crate::admin::http::error::ApiError;
use crate::admin::http::pagination::PageRequest;
use crate::admin::http::validation::FieldErrors;
use crate::admin::tokens::service::{self as api_tokens, ApiToken, Authenticated};
use crate::admin::{Caller, openapi};
use crate::ops::client_ip::client_ip_text as peer_ip;
use crate::state::AppState;

pub fn scope() -> actix_web::Scope {
    let scope =
        web::scope("/api/v1")
            .app_data(web::JsonConfig::default().error_handler(|err, _| {
                ApiError::BadRequest(format!("the JSON body is unreadable: {err}")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|err, _| {
                ApiError::NotFound(format!("no such resource: {err}")).into()
            }))
            .service(resource("/openapi.json").get(openapi::document));
    let scope = crate::admin::keys::api::routes(scope);
    let scope = crate::admin::audit::api::routes(scope);
    let scope = crate::admin::tokens::api::routes(scope);
    let scope = crate::admin::providers::api::routes(scope);
    let scope = crate::admin::clients::api::routes(scope);
    let scope = crate::admin::webhooks::api::routes(scope);
    let scope = crate::admin::users::api::routes(scope);
    let scope = crate::admin::sign_ins::api::routes(scope);
    scope.default_service(web::to(not_found))
}

/// A resource whose other methods get a JSON 405.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
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
    pub(crate) fn parse(&self) -> Result<PageRequest, ApiError> {
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
