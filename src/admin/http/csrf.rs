//! Every state-changing admin form goes through [`Protected`]: it needs a live session and a
//! `csrf` field equal (in constant time) to that session's synchronizer token.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::admin::auth::session::AdminSession;
use crate::admin::http::error::PageError;

/// The name of the hidden field every form carries.
pub const FIELD: &str = "csrf";

/// A form posted by a signed-in admin, its CSRF token checked.
pub struct Protected<T> {
    pub session: AdminSession,
    pub form: T,
}

/// For forms that carry nothing but the token (rotate, revoke, sign out).
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

impl<T: DeserializeOwned + 'static> FromRequest for Protected<T> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = AdminSession::from_request(req, &mut Payload::None);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let session = session.await?;
            let body = body
                .await
                .map_err(|e| PageError::BadRequest(format!("unreadable form: {e}")))?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|e| PageError::BadRequest(format!("unreadable form: {e}")))?;
            let presented = pairs
                .iter()
                .find(|(k, _)| k == FIELD)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            if !session.csrf_matches(presented) {
                tracing::warn!(admin = %session.admin.email, "admin form refused: bad CSRF token");
                return Err(PageError::Csrf);
            }
            let form = serde_urlencoded::from_bytes(&body)
                .map_err(|e| PageError::BadRequest(format!("unreadable form: {e}")))?;
            Ok(Protected { session, form })
        })
    }
}
