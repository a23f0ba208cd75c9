//! `GET /callback/{provider}`: the upstream redirect back.
//!
//! The `state` finds (and consumes) the pending authorization in the database, which must
//! belong to this browser and this provider. The connector turns the callback into an
//! identity; `complete::finish_login` (shared with the SAML ACS) does the rest. A `state` of
//! no pending login may be that of a broker upgrade (`super::connect`), which finishes there.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde_json::json;

use super::authorize::server_error_page;
use super::login::{expired_page, upstream_failure};
use super::session::LOGIN_COOKIE;
use super::web::error_page;
use crate::state::AppState;
use crate::upstream::UpstreamError;
use crate::webhooks::events::{self, EventType};

/// Records `login.failed` in its own transaction; a failure to record is logged, not fatal.
/// The event and the log line carry the request id the user's error page shows.
pub async fn record_failure(
    state: &AppState,
    req: &HttpRequest,
    provider: Option<&str>,
    client_id: Option<&str>,
    reason: &dyn std::fmt::Display,
) {
    let reason = reason.to_string();
    let request_id = crate::ops::request_id::of(req);
    tracing::info!(
        provider,
        client_id,
        %reason,
        request_id = request_id.as_deref().unwrap_or(""),
        "upstream login failed"
    );
    let result = async {
        let mut tx = state.store.begin_write().await?;
        events::record(
            &mut tx,
            EventType::LoginFailed,
            json!({
                "provider": provider,
                "client_id": client_id,
                "reason": reason,
                "ip": crate::ops::client_ip::client_ip_text(req),
                "request_id": request_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "recording login.failed failed");
    }
}

#[get("/callback/{provider}")]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let provider_id = path.into_inner();
    let params = query.into_inner();
    let fail = async |client_id: Option<&str>, reason: &dyn std::fmt::Display| {
        record_failure(&state, &req, Some(&provider_id), client_id, reason).await;
    };
    let Some(upstream_state) = params.get("state").filter(|s| !s.is_empty()) else {
        fail(None, &"the callback has no state").await;
        return expired_page();
    };
    let taken = crate::grants::pending::take_by_state(&state.store, &state.sealer, upstream_state);
    let (pending, secret) = match taken.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let upgrade =
                crate::vault::upgrades::take_by_state(&state.store, &state.sealer, upstream_state);
            match upgrade.await {
                Ok(Some((upgrade, secret))) => {
                    return super::connect::finish(
                        &req,
                        &state,
                        &provider_id,
                        &params,
                        upgrade,
                        &secret,
                    )
                    .await;
                }
                Ok(None) => {}
                Err(e) => return server_error_page(e),
            }
            let reason = "state mismatch: the callback matches no pending login (forged, replayed \
                          or expired)";
            fail(None, &reason).await;
            return expired_page();
        }
        Err(e) => return server_error_page(e),
    };
    let client_id = pending.request.client_id.clone();
    let cookie = req.cookie(LOGIN_COOKIE);
    let problem = if pending.provider_id.as_deref() != Some(provider_id.as_str()) {
        Some("the callback came to another provider's endpoint")
    } else if !pending.belongs_to(cookie.as_ref().map(|c| c.value())) {
        Some("the callback reached a browser that did not start the login")
    } else if !pending.is_live() {
        Some("the login took too long and expired")
    } else {
        None
    };
    if let Some(reason) = problem {
        fail(Some(&client_id), &reason).await;
        return expired_page();
    }

    let provider = match crate::providers::repo::find(&state.store, &provider_id).await {
        Ok(Some(p)) if p.enabled => p,
        Ok(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unknown sign-in method",
                "This sign-in method is not available.",
            );
        }
        Err(e) => return server_error_page(e),
    };
    let connector = match state.connectors.connector(&provider) {
        Ok(c) => c,
        Err(e) => return server_error_page(e),
    };
    let issuer = state.settings.server.issuer.as_str();
    let request = &pending.request;
    let Some(login) = connector.callback_login() else {
        return upstream_failure(
            &UpstreamError::Misconfigured("the provider has no redirect login".into()),
            Some(request),
            issuer,
        );
    };
    let redirect_uri = state.settings.server.issuer.callback(&provider.id);
    let identity = match login.finish(&params, &secret, &redirect_uri).await {
        Ok(identity) => identity,
        Err(err) => {
            fail(Some(&client_id), &err.reason()).await;
            return upstream_failure(&err, Some(request), issuer);
        }
    };

    super::complete::finish_login(
        &req,
        &state,
        &provider,
        request,
        Some(pending.created_at),
        &identity,
    )
    .await
}
