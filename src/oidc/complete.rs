//! The end of every upstream login, whatever brought the identity back (`/callback/{provider}`
//! or the SAML ACS): in one transaction the user is found, linked or created, the SSO session
//! starts, the code is issued and `login.succeeded` is recorded; then the browser goes back to
//! the client with the code.

use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::authorize::{AuthRequest, code_redirect, issue_code, server_error_page};
use super::callback::record_failure;
use super::error::{ErrorCode, redirect_error};
use super::session;
use crate::events::{self, EventType};
use crate::providers::Provider;
use crate::state::AppState;
use crate::upstream::UpstreamIdentity;
use crate::users::{self, LoginError};

pub(crate) fn header_text(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect())
}

pub(crate) fn ip_text(req: &HttpRequest) -> Option<String> {
    crate::ops::client_ip::client_ip_text(req)
}

/// Turns `identity` into a Portico login for `request` and answers the browser.
pub async fn finish_login(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    request: &AuthRequest,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    let issuer = state.settings.server.issuer.as_str();
    let client_id = &request.client_id;
    let result = async {
        let mut tx = state.store.begin_write().await?;
        let outcome =
            users::apply_login(&mut tx, &state.sealer, identity, provider.trust_email).await?;
        let (session, cookie) = session::start(
            &mut tx,
            &state.settings,
            &outcome.user_id,
            &outcome.identity_id,
            provider.id.as_str(),
        )
        .await?;
        let code = issue_code(
            &mut tx,
            request,
            &session,
            state.settings.oidc.code_ttl_secs,
        )
        .await?;
        events::record(
            &mut tx,
            EventType::LoginSucceeded,
            json!({
                "user_id": outcome.user_id,
                "provider": provider.id.as_str(),
                "client_id": client_id,
                "email": identity.email,
                "ip": ip_text(req),
                "user_agent": header_text(req, "user-agent"),
                "new_user": outcome.new_user,
            }),
        )
        .await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        Ok::<_, LoginError>((code, cookie))
    }
    .await;

    match result {
        Ok((code, cookie)) => {
            let mut response = code_redirect(request, &code, issuer);
            if let Err(e) = response.add_cookie(&cookie) {
                return server_error_page(e);
            }
            response
        }
        Err(LoginError::Disabled { user_id }) => {
            record_failure(
                state,
                req,
                Some(provider.id.as_str()),
                Some(client_id),
                &format!("user {user_id} is disabled"),
            )
            .await;
            redirect_error(
                &request.redirect_uri,
                ErrorCode::AccessDenied,
                "the account is disabled",
                request.state.as_deref(),
                issuer,
            )
        }
        Err(LoginError::Store(e)) => server_error_page(e),
    }
}
