//! `/broker/{provider}/connect?ticket=…`: the user adds upstream scopes a service asked for
//! through the broker (`super::broker`), and its callback at `/callback/{provider}`.
//!
//! The ticket (`vault::upgrades`) is the broker's; here it is spent only by the user it was
//! made for: the browser must hold a live Portico SSO session of that user, or the page is
//! refused and the ticket stays for the user. A link sent to someone else is therefore useless
//! to them, and a victim opening an attacker's link is refused before anything happens.
//!
//! The GET never goes upstream: it shows Portico's own page naming the service that asks and
//! the scopes, because some providers skip their consent screen for an app already authorised
//! and would widen the grant silently. Only the page's Continue (a POST whose CSRF token is
//! derived from the session cookie, so another site cannot send it) claims the ticket (once),
//! binds the login to this browser with a cookie named after the ticket's row, and sends the
//! browser to the provider asking for the grant's scopes as they are now plus the new ones.
//! Cancel drops the ticket. Both re-check what the broker checked (the client still exists and
//! allows the provider, each scope is still an incremental scope, the return URI is still
//! registered), and so does the callback.
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
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use secrecy::ExposeSecret;
use serde_json::json;

use super::authorize::server_error_page;
use super::branding::Brand;
use super::callback::record_failure;
use super::login::upstream_failure;
use super::session::{self, SESSION_COOKIE, cookie, removal};
use super::web::{ScopesGrantedPage, error_page, render};
use crate::clients::Client;
use crate::providers::Provider;
use crate::state::AppState;
use crate::upstream::{CallbackLogin, CallbackParams, Connector, LoginRequest, UpstreamIdentity};
use crate::vault::upgrades::{self, Claim, Upgrade};

/// Binds a claimed ticket's upstream login to the browser that claimed it; the cookie's name
/// is this followed by `_` and the ticket row's id, so several upgrades in one browser do not
/// overwrite each other's binding.
pub const UPGRADE_COOKIE: &str = "portico_upgrade";
/// The consent form's CSRF purpose (`session::form_token`).
const CSRF_PURPOSE: &str = "broker upgrade";
/// The consent form is two short fields and a button.
const MAX_FORM_BYTES: usize = 1024;

fn binding_cookie(upgrade_id: &str) -> String {
    format!("{UPGRADE_COOKIE}_{upgrade_id}")
}

#[derive(Template)]
#[template(path = "broker_consent.html")]
struct ConsentPage {
    brand: Brand,
    client_name: String,
    provider_id: String,
    provider_name: String,
    account: Option<String>,
    scopes: Vec<String>,
    ticket: String,
    csrf: String,
}

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

fn cancelled_page() -> HttpResponse {
    error_page(
        StatusCode::OK,
        "Nothing was changed",
        "You did not grant the access. You can close this window and return to the application.",
    )
}

/// Records a refused upgrade in the audit log (`broker.upgrade_refused`); a failure to write
/// it is logged, never shown.
async fn audit_refusal(state: &AppState, req: &HttpRequest, upgrade: &Upgrade, reason: &str) {
    tracing::info!(upgrade = %upgrade.id, reason, "broker upgrade refused");
    let write = async {
        let mut conn = state.store.write_conn().await?;
        crate::audit::record(
            &mut conn,
            &format!("user:{}", upgrade.user_id),
            "broker.upgrade_refused",
            &format!("identity:{}", upgrade.identity_id),
            json!({
                "provider": upgrade.provider_id,
                "client_id": upgrade.client_id,
                "requested": upgrade.requested,
                "reason": reason,
            }),
            crate::ops::client_ip::client_ip_text(req).as_deref(),
        )
        .await
    };
    if let Err(e) = write.await {
        tracing::error!(error = %e, "auditing a refused broker upgrade failed");
    }
}

/// The SSO session's user is the ticket's; with the session cookie's value.
async fn ticket_session(
    req: &HttpRequest,
    state: &AppState,
    upgrade: &Upgrade,
) -> Result<Option<String>, HttpResponse> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    match session::current(&state.store, req, &state.settings).await {
        Ok(Some(s)) if s.user_id == upgrade.user_id => Ok(Some(cookie.value().to_owned())),
        Ok(_) => Ok(None),
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

/// What the broker checked when it made the ticket, checked again now: the client still exists
/// and allows the provider, each requested scope is still one of the provider's incremental
/// scopes, and the return URI is still one of the client's. The client, or why not.
async fn still_allowed(
    state: &AppState,
    provider: &Provider,
    upgrade: &Upgrade,
) -> Result<Result<Client, &'static str>, HttpResponse> {
    let client = match crate::clients::repo::find(&state.store, &upgrade.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(Err("the client that asked no longer exists")),
        Err(e) => return Err(server_error_page(e)),
    };
    let why = if !client.allows_provider(&provider.id) {
        Some("the client that asked no longer allows the provider")
    } else if (upgrade.requested.iter()).any(|s| !provider.incremental_scopes.contains(s)) {
        Some("a requested scope is no longer an incremental scope of the provider")
    } else if (upgrade.return_uri.as_deref()).is_some_and(|u| client.redirect_uri(u).is_none()) {
        Some("the return URI is no longer registered for the client")
    } else {
        None
    };
    Ok(why.map_or(Ok(client), Err))
}

/// A ticket that may be acted on now: open, for this provider, opened by its user's browser,
/// and still allowed.
struct Visit {
    upgrade: Upgrade,
    up: Upstream,
    client: Client,
    session_cookie: String,
}

async fn visit(
    req: &HttpRequest,
    state: &AppState,
    provider_id: &str,
    ticket: Option<&String>,
) -> Result<Visit, HttpResponse> {
    if let Some(limited) = state.limits.check_ip(crate::ops::client_ip::client_ip(req)) {
        return Err(limited);
    }
    let Some(ticket) = ticket.filter(|t| !t.is_empty() && t.len() <= 100) else {
        return Err(spent_page());
    };
    let upgrade = match upgrades::find_open(&state.store, ticket).await {
        Ok(Some(u)) if u.provider_id == provider_id => u,
        Ok(_) => return Err(spent_page()),
        Err(e) => return Err(server_error_page(e)),
    };
    let Some(session_cookie) = ticket_session(req, state, &upgrade).await? else {
        let reason = "the link was opened without its user's Portico session";
        audit_refusal(state, req, &upgrade, reason).await;
        return Err(wrong_user_page());
    };
    let up = Upstream::find(state, &upgrade.provider_id).await?;
    let client = match still_allowed(state, &up.provider, &upgrade).await? {
        Ok(client) => client,
        Err(reason) => {
            audit_refusal(state, req, &upgrade, reason).await;
            return Err(spent_page());
        }
    };
    Ok(Visit {
        upgrade,
        up,
        client,
        session_cookie,
    })
}

/// Portico's page naming the service that asks and the scopes; nothing is sent upstream yet.
#[get("/broker/{provider}/connect")]
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let ticket = query.get("ticket");
    let v = match visit(&req, &state, &path, ticket).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let which = crate::vault::Which::Id(&v.upgrade.identity_id);
    let account = match crate::vault::find(&state.store, &state.sealer, which).await {
        Ok(found) => found.and_then(|f| f.identity.email),
        Err(e) => return server_error_page(e),
    };
    let page = ConsentPage {
        brand: Brand::current(),
        client_name: v.client.name.clone(),
        provider_id: v.up.provider.id.to_string(),
        provider_name: v.up.provider.display_name.clone(),
        account,
        scopes: v.upgrade.requested.clone(),
        ticket: ticket.cloned().unwrap_or_default(),
        csrf: session::form_token(CSRF_PURPOSE, &v.session_cookie),
    };
    render(StatusCode::OK, &page)
}

/// The consent page's answer: Continue goes to the provider, Cancel drops the ticket.
#[post("/broker/{provider}/connect")]
pub async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let form = match (body.len() <= MAX_FORM_BYTES)
        .then(|| super::token::parse_form(&body).ok())
        .flatten()
    {
        Some(form) => form,
        None => return spent_page(),
    };
    let v = match visit(&req, &state, &path, form.get("ticket")).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let ticket = form.get("ticket").map(String::as_str).unwrap_or_default();
    let presented = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !session::form_token_matches(CSRF_PURPOSE, &v.session_cookie, presented) {
        audit_refusal(
            &state,
            &req,
            &v.upgrade,
            "the consent form's CSRF token is wrong",
        )
        .await;
        return error_page(
            StatusCode::FORBIDDEN,
            "Nothing was changed",
            "This form has expired or came from elsewhere. Return to the application and try \
             again.",
        );
    }
    match form.get("action").map(String::as_str) {
        Some("continue") => go_upstream(&req, &state, v, ticket).await,
        Some("cancel") => cancel(&req, &state, v, ticket).await,
        _ => spent_page(),
    }
}

/// Drops the ticket and returns to the client with `error=access_denied`, or shows a page.
async fn cancel(req: &HttpRequest, state: &AppState, v: Visit, ticket: &str) -> HttpResponse {
    match upgrades::cancel(&state.store, &v.upgrade.id, ticket).await {
        Ok(true) => {}
        Ok(false) => return spent_page(),
        Err(e) => return server_error_page(e),
    }
    audit_refusal(state, req, &v.upgrade, "the user cancelled").await;
    let back = (v.upgrade.return_uri.as_deref()).and_then(|u| v.client.redirect_uri(u));
    match back {
        Some(uri) => super::error::redirect_with(&uri, &[("error", "access_denied")]),
        None => cancelled_page(),
    }
}

/// Every scope to ask for beyond the provider's own: those the stored grant has now (read
/// at this moment, not when the ticket was made) and the new ones; with the identity's e-mail
/// as the login hint.
async fn scopes_now(
    state: &AppState,
    upgrade: &Upgrade,
) -> Result<Option<(Vec<String>, Option<String>)>, crate::store::StoreError> {
    let which = crate::vault::Which::Id(&upgrade.identity_id);
    let Some(vaulted) = crate::vault::find(&state.store, &state.sealer, which).await? else {
        return Ok(None);
    };
    let mut scopes = super::broker::granted(&vaulted);
    for s in &upgrade.requested {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    Ok(Some((scopes, vaulted.identity.email)))
}

/// Claims the ticket and sends the browser to the provider.
async fn go_upstream(req: &HttpRequest, state: &AppState, v: Visit, ticket: &str) -> HttpResponse {
    let (upgrade, up) = (&v.upgrade, &v.up);
    let provider = &up.provider;
    let (scopes, email) = match scopes_now(state, upgrade).await {
        Ok(Some(found)) => found,
        Ok(None) => return spent_page(),
        Err(e) => return server_error_page(e),
    };
    let Some(login) = up.login() else {
        return spent_page();
    };
    let request = LoginRequest {
        redirect_uri: &up.redirect_uri,
        login_hint: email.as_deref(),
        force_login: false,
        max_age: None,
        extra_scopes: &scopes,
    };
    let start = match login.begin(request).await {
        Ok(start) => start,
        Err(err) => {
            record_failure(state, req, Some(provider.id.as_str()), None, &err).await;
            return upstream_failure(&err, None, state.settings.server.issuer.as_str());
        }
    };
    let mut sent: Vec<String> = provider.scopes.clone();
    sent.extend(scopes.into_iter().filter(|s| !provider.scopes.contains(s)));
    let browser = crate::crypto::random_token("");
    let claim = Claim {
        browser: browser.expose_secret(),
        upstream_state: &start.state,
        secret: &start.secret,
        scopes: &sent,
    };
    match upgrades::claim(&state.store, &state.sealer, &upgrade.id, ticket, &claim).await {
        Ok(true) => {}
        Ok(false) => return spent_page(),
        Err(e) => return server_error_page(e),
    }
    let mut response = super::error::found(start.url.to_string());
    let set = cookie(
        &state.settings,
        binding_cookie(&upgrade.id),
        browser.expose_secret().to_owned(),
        upgrades::TICKET_SECS,
    );
    if let Err(e) = response.add_cookie(&set) {
        return server_error_page(e);
    }
    response
}

/// The callback of an upgrade's upstream login; `upgrade` was taken by the callback's `state`.
/// Whatever the outcome, the upgrade's binding cookie is cleared.
pub async fn finish(
    req: &HttpRequest,
    state: &AppState,
    provider_id: &str,
    params: &CallbackParams,
    upgrade: Upgrade,
    secret: &secrecy::SecretString,
) -> HttpResponse {
    let name = binding_cookie(&upgrade.id);
    let mut response = finished(req, state, provider_id, params, &upgrade, secret).await;
    if let Err(e) = response.add_cookie(&removal(&state.settings, name)) {
        tracing::warn!(error = %e, "clearing the upgrade cookie failed");
    }
    response
}

async fn finished(
    req: &HttpRequest,
    state: &AppState,
    provider_id: &str,
    params: &CallbackParams,
    upgrade: &Upgrade,
    secret: &secrecy::SecretString,
) -> HttpResponse {
    let fail = async |reason: &str| {
        let client = Some(upgrade.client_id.as_str());
        record_failure(state, req, Some(provider_id), client, &reason).await;
        audit_refusal(state, req, upgrade, reason).await;
    };
    let cookie = req.cookie(&binding_cookie(&upgrade.id));
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
    match ticket_session(req, state, upgrade).await {
        Ok(Some(_)) => {}
        Ok(None) => {
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
    let client = match still_allowed(state, provider, upgrade).await {
        Ok(Ok(client)) => client,
        Ok(Err(reason)) => {
            fail(reason).await;
            return spent_page();
        }
        Err(page) => return page,
    };
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
    let write = store_upgrade(req, state, provider, upgrade, &mut identity);
    match under_lease(state, &upgrade.identity_id, write).await {
        Ok(Stored::Done) => {}
        Ok(Stored::Busy) => {
            fail("a refresh of the identity's tokens did not finish in time").await;
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "Your account at the provider is being updated. Nothing was changed. Return to \
                 the application and try again in a moment.",
            );
        }
        Ok(Stored::OtherAccount) => {
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
    match &upgrade.return_uri {
        Some(uri) => super::error::found(uri.clone()),
        None => landed(provider, &client, upgrade, &identity),
    }
}

/// Portico's page saying it is done, naming the requested scopes the provider did not grant.
fn landed(
    provider: &Provider,
    client: &Client,
    upgrade: &Upgrade,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    let scope = identity.tokens.as_ref().and_then(|t| t.scope.as_deref());
    let granted: Vec<&str> = scope.unwrap_or("").split([' ', ',']).collect();
    let page = ScopesGrantedPage {
        brand: Brand::current(),
        client_name: client.name.clone(),
        provider_name: provider.display_name.clone(),
        not_granted: (upgrade.requested.iter())
            .filter(|s| !granted.contains(&s.as_str()))
            .cloned()
            .collect(),
    };
    render(StatusCode::OK, &page)
}

/// How storing an upgrade ended.
enum Stored {
    Done,
    /// The provider signed in someone else than the identity being upgraded; nothing stored.
    OtherAccount,
    /// A refresh of the identity held its lease too long; nothing stored.
    Busy,
}

/// Runs `write` (which ends the lease when it stores) under the refresh lease of identity
/// `id` (`vault::refresh`): a refresh running meanwhile finishes first and one starting
/// meanwhile waits and then reads the upgraded grant, so neither overwrites the other's tokens.
async fn under_lease(
    state: &AppState,
    id: &str,
    write: impl Future<Output = Result<Stored, crate::store::StoreError>>,
) -> Result<Stored, crate::store::StoreError> {
    if !crate::vault::refresh::await_lease(&state.store, id).await? {
        return Ok(Stored::Busy);
    }
    let outcome = write.await;
    if !matches!(outcome, Ok(Stored::Done))
        && let Err(e) = crate::users::identities::release_lease(&state.store, id, false).await
    {
        tracing::error!(error = %e, "releasing an identity's refresh lease failed");
    }
    outcome
}

/// Stores the upgraded grant, audited, if `identity` is the one the ticket upgrades; run
/// [`under_lease`]. The identity is checked to be the ticket's (its user's row locked) in the
/// transaction that stores the tokens and ends the lease.
async fn store_upgrade(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    upgrade: &Upgrade,
    identity: &mut UpstreamIdentity,
) -> Result<Stored, crate::store::StoreError> {
    // A provider that leaves `scope` out of its answer granted what was asked (RFC 6749 5.1):
    // the exact list sent.
    if let Some(tokens) = identity.tokens.as_mut()
        && tokens.scope.is_none()
    {
        tokens.scope = Some(upgrade.scopes.join(" "));
    }
    let scope = identity.tokens.as_ref().and_then(|t| t.scope.clone());
    let mut tx = state.store.begin_write().await?;
    crate::users::repo::lock_in(&mut tx, &upgrade.user_id).await?;
    let (at, subject) = (identity.provider.as_str(), identity.subject.as_str());
    match crate::users::identities::find_by_subject_in(&mut tx, at, subject).await? {
        Some((id, user)) if id == upgrade.identity_id && user == upgrade.user_id => {}
        _ => return Ok(Stored::OtherAccount),
    }
    crate::users::update_claims(
        &mut tx,
        &state.sealer,
        &upgrade.user_id,
        &upgrade.identity_id,
        identity,
        provider.trust_email,
    )
    .await?;
    crate::users::identities::end_lease_in(&mut tx, &upgrade.identity_id, false).await?;
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
    Ok(Stored::Done)
}
