//! The end of every upstream login, whatever brought the identity back (`/callback/{provider}`
//! or the SAML completion step): in one transaction the user is found, linked or created, the
//! SSO session starts, the code is issued and `login.succeeded` is recorded; then the browser
//! goes back to the client with the code.
//!
//! First, the client must still allow the provider (an admin may have removed it while the
//! user was signing in). Then a login the application asked to be fresh (`prompt=login`,
//! `max_age`) must be: when the provider says when it authenticated the user (a SAML
//! AuthnInstant), that time must be after the login started, or within `max_age`. An IdP
//! that answers from an old session instead of authenticating again is refused.

use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::authorize::{AuthRequest, access_denied, code_redirect, issue_code, server_error_page};
use super::callback::record_failure;
use super::error::{ErrorCode, error_location};
use super::session;
use super::web::error_page_with_way_back;
use crate::ops::client_ip::client_ip_text;
use crate::providers::Provider;
use crate::state::AppState;
use crate::upstream::UpstreamIdentity;
use crate::users::{self, LoginError};
use crate::webhooks::events::{self, EventType};

pub(crate) fn header_text(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect())
}

/// How far the provider's clock may be from Portico's when its authentication time is checked.
const CLOCK_SKEW_SECS: i64 = 120;

/// Why `auth_time` does not satisfy `request` (started at `started_at`, when known), if not.
fn not_fresh(
    request: &AuthRequest,
    started_at: Option<i64>,
    auth_time: Option<i64>,
    now: i64,
) -> Option<&'static str> {
    let at = auth_time?;
    if request.prompt_login && started_at.is_some_and(|s| !authenticated_since(s, Some(at))) {
        return Some("the IdP did not authenticate the user again, as prompt=login asked");
    }
    if request
        .max_age
        .is_some_and(|max| now - at > max as i64 + CLOCK_SKEW_SECS)
    {
        return Some("the IdP did not authenticate the user again, as max_age asked");
    }
    None
}

/// Whether a provider that says when it authenticated the user (`auth_time`) did so after a
/// forced login started at `started_at`; a provider that does not say is taken at its word
/// (it was sent `prompt=login`).
pub(crate) fn authenticated_since(started_at: i64, auth_time: Option<i64>) -> bool {
    auth_time.is_none_or(|at| at >= started_at - CLOCK_SKEW_SECS)
}

/// Whether the provider STATED (`auth_time`) that it authenticated the user after a forced
/// login started at `started_at`. Stricter than [`authenticated_since`]: silence proves
/// nothing, since an IdP may ignore `prompt=login` and answer from an old session.
pub(crate) fn stated_since(started_at: i64, auth_time: Option<i64>) -> bool {
    auth_time.is_some_and(|at| at >= started_at - CLOCK_SKEW_SECS)
}

/// Finishes the upstream login of `pending` as its purpose says: a client's authorization
/// (a code for its redirect URI) or a login for the account page.
pub async fn finish_pending(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    pending: &crate::grants::pending::Pending,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    use crate::grants::pending::Purpose;
    match &pending.purpose {
        Purpose::Authorize(request) => {
            finish_login(
                req,
                state,
                provider,
                request,
                Some(pending.created_at),
                identity,
            )
            .await
        }
        Purpose::Account(login) => {
            let started_at = pending.created_at;
            super::account::finish(req, state, provider, login, started_at, identity).await
        }
    }
}

/// The Portico login of `identity`, in the caller's transaction: the user found, linked or
/// created, the SSO session started, and `login.succeeded` recorded (for `client_id`, or for
/// the account page when `None`). Returns the session and its cookie.
pub(crate) async fn log_in_in(
    tx: &mut sqlx::AnyConnection,
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    identity: &UpstreamIdentity,
    client_id: Option<&str>,
) -> Result<(session::Session, Cookie<'static>), LoginError> {
    // A sign-in that asked only the configured scopes keeps a larger grant the user added
    // through the broker: only its claims are written.
    let (store, sealer) = (&state.store, &state.sealer);
    let claims_only;
    let identity =
        if crate::vault::keeps_larger_grant(tx, store, sealer, provider, identity).await? {
            claims_only = UpstreamIdentity {
                tokens: None,
                ..identity.clone()
            };
            &claims_only
        } else {
            identity
        };
    let outcome = users::apply_login(tx, &state.sealer, identity, provider.trust_email).await?;
    let started = session::start(
        tx,
        &state.settings,
        &outcome.user_id,
        &outcome.identity_id,
        provider.id.as_str(),
        identity.auth_time,
    )
    .await?;
    let login = Succeeded {
        user_id: &outcome.user_id,
        client_id,
        new_user: outcome.new_user,
        step_up: false,
    };
    record_success_in(tx, req, provider, identity, &login).await?;
    Ok(started)
}

/// A login that succeeded, for its `login.succeeded` event.
pub(crate) struct Succeeded<'a> {
    pub user_id: &'a str,
    /// `None`: a login for the account page.
    pub client_id: Option<&'a str>,
    pub new_user: bool,
    /// The account page's step-up: a signed-in user authenticated again.
    pub step_up: bool,
}

/// Records `login.succeeded` for `login` (of `identity` at `provider`) in the caller's
/// transaction.
pub(crate) async fn record_success_in(
    tx: &mut sqlx::AnyConnection,
    req: &HttpRequest,
    provider: &Provider,
    identity: &UpstreamIdentity,
    login: &Succeeded<'_>,
) -> Result<(), crate::store::StoreError> {
    events::record(
        tx,
        EventType::LoginSucceeded,
        json!({
            "user_id": login.user_id,
            "provider": provider.id.as_str(),
            "client_id": login.client_id,
            "email": identity.email,
            "ip": client_ip_text(req),
            "user_agent": header_text(req, "user-agent"),
            "new_user": login.new_user,
            "step_up": login.step_up,
            "request_id": crate::ops::request_id::of(req),
        }),
    )
    .await?;
    Ok(())
}

/// Turns `identity` into a Portico login for `request` (saved at `started_at`; `None` for a
/// login nobody asked for, such as an IdP-initiated one) and answers the browser.
pub async fn finish_login(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    request: &AuthRequest,
    started_at: Option<i64>,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    let issuer = state.settings.server.issuer.as_str();
    let client_id = &request.client_id;
    let fail = async |reason: &dyn std::fmt::Display| {
        record_failure(
            state,
            req,
            Some(provider.id.as_str()),
            Some(client_id),
            reason,
        )
        .await;
    };
    // The client's allowed providers as they are now: an admin may have removed this provider
    // since the login started (the chooser offered only allowed ones).
    match crate::clients::repo::find(&state.store, client_id).await {
        Ok(Some(client)) if client.allows_provider(&provider.id) => {}
        Ok(_) => {
            fail(&"the provider is not allowed for this client").await;
            let text = "the sign-in provider is not allowed for this application";
            return access_denied(request, text, issuer);
        }
        Err(e) => return server_error_page(e),
    }
    if let Some(reason) = not_fresh(request, started_at, identity.auth_time, crate::store::now()) {
        fail(&reason).await;
        let back = error_location(
            &request.redirect_uri,
            ErrorCode::AccessDenied,
            "the sign-in provider did not authenticate the user again",
            request.state.as_deref(),
            issuer,
        );
        return error_page_with_way_back(
            actix_web::http::StatusCode::FORBIDDEN,
            "Please sign in again",
            "The application asked you to sign in again, but your sign-in provider used an \
             earlier sign-in instead. Please try again; if this keeps happening, tell your \
             administrator.",
            &back,
        );
    }
    let result = async {
        let mut tx = state.store.begin_write().await?;
        let (session, cookie) =
            log_in_in(&mut tx, req, state, provider, identity, Some(client_id)).await?;
        let code = issue_code(
            &mut tx,
            request,
            &session,
            state.settings.oidc.code_ttl_secs,
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
            fail(&format!("user {user_id} is disabled")).await;
            access_denied(request, "the account is disabled", issuer)
        }
        Err(LoginError::Store(e)) => server_error_page(e),
    }
}
