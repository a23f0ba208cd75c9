//! `GET /broker/{provider}/connect?ticket=…`: the user adds upstream scopes a service asked
//! for through the broker (`super::broker`), and its callback at `/callback/{provider}`.
//!
//! The ticket (`vault::upgrades`) is the broker's; here it is spent only by the user it was
//! made for: the browser must hold a live Portico SSO session of that user, or the page is
//! refused and the ticket stays for the user. A link sent to someone else is therefore useless
//! to them, and a victim opening an attacker's link is refused before anything happens. The
//! visit claims the ticket (once), binds the login to this browser with a fresh cookie, and
//! sends it to the provider asking for the grant's scopes plus the new ones.
//!
//! On the callback the same browser, still signed in as that user, must come back, and the
//! provider must have signed in the SAME identity (provider and subject) whose grant is being
//! upgraded: anything else is refused and nothing is stored, so no one's upstream grant can be
//! attached to another user. Then the new tokens are sealed into the identity row as a login
//! stores them, `identity.scopes_granted` is audited in the same transaction, and the user lands
//! at the return URI the broker checked (one of the client's registered redirect URIs) or on
//! Portico's page saying it is done: never at a URL from the request.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use secrecy::ExposeSecret;
use serde_json::json;

use super::authorize::server_error_page;
use super::callback::record_failure;
use super::login::upstream_failure;
use super::session::{self, cookie, removal};
use super::web::{ScopesGrantedPage, error_page, render};
use crate::providers::Provider;
use crate::state::AppState;
use crate::upstream::{CallbackLogin, CallbackParams, Connector, LoginRequest, UpstreamIdentity};
use crate::vault::upgrades::{self, Claim, Upgrade};

/// Binds a claimed ticket's upstream login to the browser that claimed it.
pub const UPGRADE_COOKIE: &str = "portico_upgrade";

fn spent_page() -> HttpResponse {
    error_page(
        StatusCode::BAD_REQUEST,
        "This link is no longer valid",
        "This link has expired or was already used. Return to the application and try again.",
    )
}

fn wrong_user_page() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "Sign in first",
        "This link was made for another account, or you are not signed in. Sign in to the \
         application that sent you here with your own account, then use the link it gives you.",
    )
}

/// The SSO session's user is the ticket's.
async fn is_ticket_user(
    req: &HttpRequest,
    state: &AppState,
    upgrade: &Upgrade,
) -> Result<bool, HttpResponse> {
    match session::current(&state.store, req, &state.settings).await {
        Ok(s) => Ok(s.is_some_and(|s| s.user_id == upgrade.user_id)),
        Err(e) => Err(server_error_page(e)),
    }
}

/// The enabled provider `id` with its connector, which logs in by redirect, and Portico's
/// callback URL there; a page when there is none.
struct Upstream {
    provider: Provider,
    connector: Arc<dyn Connector>,
    redirect_uri: String,
}

impl Upstream {
    async fn find(state: &AppState, id: &str) -> Result<Self, HttpResponse> {
        let provider = match crate::providers::repo::find(&state.store, id).await {
            Ok(Some(p)) if p.enabled => p,
            Ok(_) => return Err(spent_page()),
            Err(e) => return Err(server_error_page(e)),
        };
        let connector = state
            .connectors
            .connector(&provider)
            .map_err(server_error_page)?;
        if connector.callback_login().is_none() {
            return Err(spent_page());
        }
        let redirect_uri = state.settings.server.issuer.callback(&provider.id);
        Ok(Self {
            provider,
            connector,
            redirect_uri,
        })
    }

    fn login(&self) -> Option<&dyn CallbackLogin> {
        self.connector.callback_login()
    }
}

#[get("/broker/{provider}/connect")]
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let Some(ticket) = query
        .get("ticket")
        .filter(|t| !t.is_empty() && t.len() <= 100)
    else {
        return spent_page();
    };
    let upgrade = match upgrades::find_open(&state.store, ticket).await {
        Ok(Some(u)) if u.provider_id == *path => u,
        Ok(_) => return spent_page(),
        Err(e) => return server_error_page(e),
    };
    match is_ticket_user(&req, &state, &upgrade).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(upgrade = %upgrade.id, "broker upgrade link opened without its user's session");
            return wrong_user_page();
        }
        Err(page) => return page,
    }
    let up = match Upstream::find(&state, &upgrade.provider_id).await {
        Ok(up) => up,
        Err(page) => return page,
    };
    let provider = &up.provider;
    // The client may have lost the provider since the broker made the ticket.
    match crate::clients::repo::find(&state.store, &upgrade.client_id).await {
        Ok(Some(c)) if c.allows_provider(&provider.id) => {}
        Ok(_) => return spent_page(),
        Err(e) => return server_error_page(e),
    }
    let Some(login) = up.login() else {
        return spent_page();
    };
    let request = LoginRequest {
        redirect_uri: &up.redirect_uri,
        login_hint: None,
        force_login: false,
        max_age: None,
        extra_scopes: &upgrade.scopes,
    };
    let start = match login.begin(request).await {
        Ok(start) => start,
        Err(err) => {
            record_failure(&state, &req, Some(provider.id.as_str()), None, &err).await;
            return upstream_failure(&err, None, state.settings.server.issuer.as_str());
        }
    };
    let browser = crate::crypto::random_token("");
    let claim = Claim {
        browser: browser.expose_secret(),
        upstream_state: &start.state,
        secret: &start.secret,
    };
    match upgrades::claim(&state.store, &state.sealer, &upgrade.id, ticket, &claim).await {
        Ok(true) => {}
        Ok(false) => return spent_page(),
        Err(e) => return server_error_page(e),
    }
    let binding = browser.expose_secret().to_owned();
    let mut response = super::error::found(start.url.to_string());
    let set = cookie(
        &state.settings,
        UPGRADE_COOKIE,
        binding,
        upgrades::TICKET_SECS,
    );
    if let Err(e) = response.add_cookie(&set) {
        return server_error_page(e);
    }
    response
}

/// The callback of an upgrade's upstream login; `upgrade` was taken by the callback's `state`.
pub async fn finish(
    req: &HttpRequest,
    state: &AppState,
    provider_id: &str,
    params: &CallbackParams,
    upgrade: Upgrade,
    secret: &secrecy::SecretString,
) -> HttpResponse {
    let fail = async |reason: &str| {
        let client = Some(upgrade.client_id.as_str());
        record_failure(state, req, Some(provider_id), client, &reason).await;
    };
    let cookie = req.cookie(UPGRADE_COOKIE);
    let problem = if upgrade.provider_id != provider_id {
        Some("the callback came to another provider's endpoint")
    } else if !upgrade.belongs_to(cookie.as_ref().map(|c| c.value())) {
        Some("the callback reached a browser that did not start the upgrade")
    } else if !upgrade.is_live() {
        Some("the upgrade took too long and expired")
    } else {
        None
    };
    if let Some(reason) = problem {
        fail(reason).await;
        return spent_page();
    }
    match is_ticket_user(req, state, &upgrade).await {
        Ok(true) => {}
        Ok(false) => {
            fail("the browser is no longer signed in as the user the upgrade was made for").await;
            return wrong_user_page();
        }
        Err(page) => return page,
    }
    let up = match Upstream::find(state, provider_id).await {
        Ok(up) => up,
        Err(page) => return page,
    };
    let (provider, issuer) = (&up.provider, state.settings.server.issuer.as_str());
    let Some(login) = up.login() else {
        return spent_page();
    };
    let mut identity = match login.finish(params, secret, &up.redirect_uri).await {
        Ok(identity) => identity,
        Err(err) => {
            fail(&err.reason()).await;
            return upstream_failure(&err, None, issuer);
        }
    };
    match store_upgrade(req, state, provider, &upgrade, &mut identity).await {
        Ok(true) => {}
        Ok(false) => {
            fail("the provider signed in another account than the one being upgraded").await;
            return error_page(
                StatusCode::FORBIDDEN,
                "Another account",
                "You signed in at the provider with another account than the one linked to \
                 your sign-in here. Nothing was changed. Try again with that account.",
            );
        }
        Err(e) => return server_error_page(e),
    }
    let mut response = match &upgrade.return_uri {
        Some(uri) => super::error::found(uri.clone()),
        None => landed(state, provider, &upgrade).await,
    };
    if let Err(e) = response.add_cookie(&removal(&state.settings, UPGRADE_COOKIE)) {
        tracing::warn!(error = %e, "clearing the upgrade cookie failed");
    }
    response
}

/// Portico's page saying it is done.
async fn landed(state: &AppState, provider: &Provider, upgrade: &Upgrade) -> HttpResponse {
    let client_name = match crate::clients::repo::find(&state.store, &upgrade.client_id).await {
        Ok(Some(c)) => c.name,
        _ => "The application".to_owned(),
    };
    let page = ScopesGrantedPage {
        brand: super::branding::Brand::current(),
        client_name,
        provider_name: provider.display_name.clone(),
    };
    render(StatusCode::OK, &page)
}

/// Stores the upgraded grant, audited, if `identity` is the one the ticket upgrades; `false`
/// (nothing stored) when the provider signed in someone else.
async fn store_upgrade(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    upgrade: &Upgrade,
    identity: &mut UpstreamIdentity,
) -> Result<bool, crate::store::StoreError> {
    let which = crate::vault::Which::Id(&upgrade.identity_id);
    let Some(current) = crate::vault::find(&state.store, &state.sealer, which).await? else {
        return Ok(false);
    };
    if current.user_id != upgrade.user_id
        || identity.provider != current.identity.provider
        || identity.subject != current.identity.subject
    {
        return Ok(false);
    }
    // A provider that leaves `scope` out of its answer granted what was asked (RFC 6749 5.1).
    if let Some(tokens) = identity.tokens.as_mut()
        && tokens.scope.is_none()
    {
        tokens.scope = Some(upgrade.scopes.join(" "));
    }
    let scope = identity.tokens.as_ref().and_then(|t| t.scope.clone());
    let mut tx = state.store.begin_write().await?;
    crate::users::update_claims(
        &mut tx,
        &state.sealer,
        &upgrade.user_id,
        &upgrade.identity_id,
        identity,
        provider.trust_email,
    )
    .await?;
    crate::audit::record(
        &mut tx,
        &format!("user:{}", upgrade.user_id),
        "identity.scopes_granted",
        &format!("identity:{}", upgrade.identity_id),
        json!({
            "provider": provider.id,
            "client_id": upgrade.client_id,
            "requested": upgrade.requested,
            "scope": scope,
        }),
        crate::ops::client_ip::client_ip_text(req).as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
