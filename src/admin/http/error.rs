//! Errors as the two faces show them: JSON `{"error","message"}` for the API, a page or a
//! redirect for the UI.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::http::validation::FieldErrors;
use crate::store::StoreError;

/// The body of every admin API error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `token_revoked`, `not_found`, `conflict`,
    /// `validation_failed`, `bad_request`, `internal_error` or `temporarily_unavailable` (503:
    /// the database cannot be reached or is busy; retry after `Retry-After` seconds).
    pub error: String,
    pub message: String,
    /// For `validation_failed`: what is wrong with each field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid admin API token is required (Authorization: Bearer …)")]
    Unauthorized,
    #[error("this admin API token has been revoked")]
    Revoked,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this endpoint does not take {0}")]
    MethodNotAllowed(String),
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// What a service's error means to both faces. Each resource's error type says it once
/// ([`Classify`]); [`ApiError`], [`PageError`] and [`form_errors`] are built from it.
pub enum Fault {
    /// No such thing: a 404.
    NotFound,
    /// The change cannot be made as things are (managed by the configuration file, already
    /// done…): a 409 in the API, a 400 page.
    Conflict,
    /// The name in this field is taken: a 409 in the API, "is already taken" on the form.
    Taken(&'static str),
    /// The input is wrong about this field: a 422 naming it, or the message beside it.
    Field(&'static str),
    /// The store failed: a 500.
    Store(StoreError),
}

/// A service error that says what it means; its `Display` is the message both faces show.
pub trait Classify: std::fmt::Display {
    fn fault(self) -> Fault;
}

impl<E: Classify> From<E> for ApiError {
    fn from(err: E) -> Self {
        let message = err.to_string();
        match err.fault() {
            Fault::NotFound => ApiError::NotFound(message),
            Fault::Conflict | Fault::Taken(_) => ApiError::Conflict(message),
            Fault::Field(field) => ApiError::Validation(FieldErrors::single(field, message)),
            Fault::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Internal(err.into())
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        ApiError::Validation(errors)
    }
}

/// The database behind this failure cannot be reached or is busy: answered 503, not 500.
fn unavailable(err: &anyhow::Error) -> bool {
    crate::store::caused_by_unavailable(err.as_ref())
}

const UNAVAILABLE: &str = "the database is temporarily unavailable; try again shortly";

/// `Retry-After` on a 503.
fn retry_after() -> (header::HeaderName, String) {
    (
        header::RETRY_AFTER,
        crate::oidc::error::RETRY_AFTER_SECS.to_string(),
    )
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Internal(e) if unavailable(e) => "temporarily_unavailable",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Revoked => "token_revoked",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Validation(_) => "validation_failed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Revoked => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(e) if unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut message = self.to_string();
        if let ApiError::Internal(err) = self {
            if unavailable(err) {
                tracing::warn!(error = %format!("{err:#}"), "admin API: the database is unavailable");
                message = UNAVAILABLE.to_owned();
            } else {
                tracing::error!(error = %format!("{err:#}"), "admin API request failed");
            }
        }
        let body = ErrorBody {
            error: self.code().to_owned(),
            message,
            fields: match self {
                ApiError::Validation(errors) => Some(errors.clone().into_map()),
                _ => None,
            },
        };
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized | ApiError::Revoked) {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header(retry_after());
        }
        res.json(body)
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// What a page handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in first")]
    SignInRequired,
    #[error("the form has expired or did not come from this site; go back, reload and try again")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("there is no such page")]
    NotFound,
    #[error("something went wrong on our side; the error has been logged")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        PageError::Internal(err.into())
    }
}

impl<E: Classify> From<E> for PageError {
    fn from(err: E) -> Self {
        let message = err.to_string();
        match err.fault() {
            Fault::NotFound => PageError::NotFound,
            Fault::Store(e) => e.into(),
            Fault::Conflict | Fault::Taken(_) | Fault::Field(_) => PageError::BadRequest(message),
        }
    }
}

/// A refused change as the errors to show on the form's fields, when it is about one; any
/// other failure is the page's error.
pub fn form_errors<E: Classify>(err: E) -> Result<FieldErrors, PageError> {
    let message = err.to_string();
    match err.fault() {
        Fault::Taken(field) => Ok(FieldErrors::single(field, "is already taken")),
        Fault::Field(field) => Ok(FieldErrors::single(field, message)),
        Fault::NotFound => Err(PageError::NotFound),
        Fault::Store(e) => Err(e.into()),
        Fault::Conflict => Err(PageError::BadRequest(message)),
    }
}

impl From<askama::Error> for PageError {
    fn from(err: askama::Error) -> Self {
        PageError::Internal(err.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            // The response is a 303 to the sign-in page; 401 is what logs and metrics record.
            PageError::SignInRequired => StatusCode::UNAUTHORIZED,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Internal(e) if unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::SignInRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/admin/sign-in"))
                .finish();
        }
        let down = matches!(self, PageError::Internal(err) if unavailable(err));
        if let PageError::Internal(err) = self {
            if down {
                tracing::warn!(error = %format!("{err:#}"), "admin page: the database is unavailable");
            } else {
                tracing::error!(error = %format!("{err:#}"), "admin page failed");
            }
        }
        let title = match self {
            PageError::Csrf => "Form refused",
            PageError::BadRequest(_) => "Bad request",
            PageError::NotFound => "Not found",
            _ if down => "Temporarily unavailable",
            _ => "Error",
        };
        let message = match down {
            true => UNAVAILABLE.to_owned(),
            false => self.to_string(),
        };
        let html = ErrorPage {
            title,
            message: &message,
        }
        .render()
        .unwrap_or_else(|_| "error".to_owned());
        let mut res = HttpResponse::build(self.status_code());
        if down {
            res.insert_header(retry_after());
        }
        res.content_type("text/html; charset=utf-8").body(html)
    }
}
