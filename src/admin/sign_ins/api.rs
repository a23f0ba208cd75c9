//! `/admin/api/v1/sign-ins`: logins that succeeded and failed, filtered and paginated.

use actix_web::web;

use crate::admin::http::api::{ApiCaller, resource};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::admin::sign_ins::service::{self as sign_ins, SignIn, SignInParams};
use crate::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope.service(resource("/sign-ins").get(list_sign_ins))
}

/// Logins, newest first, with the reason of each failure and the request id the user saw;
/// filtered by outcome, provider and client.
#[utoipa::path(
    get, path = "/sign-ins", tag = "sign-ins",
    params(SignInParams),
    responses(
        (status = 200, description = "One page of logins", body = Page<SignIn>),
        (status = 422, description = "Bad filters", body = ErrorBody),
    ),
)]
pub async fn list_sign_ins(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<SignInParams>,
) -> Result<web::Json<Page<SignIn>>, ApiError> {
    let query = params.parse()?;
    Ok(web::Json(sign_ins::list(&state.store, &query).await?))
}
