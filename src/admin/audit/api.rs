//! `/admin/api/v1/audit`: the audit log, filtered and paginated.

use actix_web::web;

use crate::admin::audit::service::{self as audit, AuditEntry, AuditParams};
use crate::admin::http::api::{ApiCaller, resource};
use crate::admin::http::error::{ApiError, ErrorBody};
use crate::admin::http::pagination::Page;
use crate::state::AppState;

pub fn routes(scope: actix_web::Scope) -> actix_web::Scope {
    scope.service(resource("/audit").get(list_audit))
}

/// The audit log, newest first, filtered by action (`type`), user, actor and time.
#[utoipa::path(
    get, path = "/audit", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "One page of entries", body = Page<AuditEntry>),
        (status = 422, description = "Bad filters", body = ErrorBody),
    ),
)]
pub async fn list_audit(
    _caller: ApiCaller,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<web::Json<Page<AuditEntry>>, ApiError> {
    let query = params.parse()?;
    Ok(web::Json(audit::list(&state.store, &query).await?))
}
