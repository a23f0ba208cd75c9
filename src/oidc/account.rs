//! `/account`: the signed-in user's own page. It lists the user's connected sign-in accounts
//! (identities), connects another provider, and disconnects one while another remains.
//!
//! - Signed out, `/account` sends the visitor through Portico's own sign-in (the chooser) with
//!   an account login ([`AccountLogin::SignIn`]); the login ends here, never at a URL taken
//!   from the request.
//! - Connecting and disconnecting need a recent sign-in, as the provider STATES it (an ID
//!   token's `auth_time`, a SAML AuthnInstant; `Session::stated_auth_time`): a session whose
//!   stated time is older than [`STEP_UP_MAX_AGE_SECS`], or that has none (the IdP answered
//!   silently from its own session), first signs in again at the provider it came through
//!   ([`AccountLogin::StepUp`]: `prompt=login`, `max_age=0`, SAML ForceAuthn). The provider
//!   must state a new authentication since the step-up began, as the same user; an IdP that
//!   ignores the request and does not say when it authenticated is refused. Then the action
//!   continues.
//! - Connecting is an upstream login whose pending row holds the session's user and session
//!   ([`AccountLogin::Link`]), bound to this browser like every pending login. What comes back
//!   is linked to that user, unless it is another user's: then nothing is merged, the page says
//!   so, and the refusal is audited and recorded as `login.failed`.
//! - Every POST carries a CSRF token bound to the session cookie (`session::form_token`); the
//!   cookies are SameSite=Lax. The rules themselves (never the last identity, never another
//!   user's) live in `users::links`, not in the template.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::DateTime;

use super::authorize::{begin_login, save_bound, server_error_page};
use super::branding::Brand;
use super::callback::record_failure;
use super::complete::{Succeeded, log_in_in, record_success_in, stated_since};
use super::login::expired_page;
use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE, Session};
use super::token::parse_form;
use super::web::{error_page, render};
use crate::grants::pending::{self, AccountAction, AccountLogin, Purpose};
use crate::grants::sessions;
use crate::ops::client_ip::client_ip_text;
use crate::providers::Provider;
use crate::state::AppState;
use crate::upstream::UpstreamIdentity;
use crate::users::links::{self, LinkError, Linked, Via};
use crate::users::{self, LoginError, identities};

/// How recent the session's sign-in must be (seconds) to connect or disconnect an account;
/// older, the user signs in again first. Short: these change who can sign in as the user.
pub const STEP_UP_MAX_AGE_SECS: i64 = 5 * 60;

/// The purpose the account page's CSRF tokens are bound to (with the session cookie).
const CSRF_PURPOSE: &str = "account page";

/// The most bytes an account form may have (a token and an id).
const MAX_FORM_BYTES: usize = 2048;

/// The result shown at the top of the page after an action: from a fixed list, never text
/// taken from the request.
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "connected" => Some("The account is connected. You can now sign in with it."),
        "already" => Some("That account was already connected to you. Nothing changed."),
        "disconnected" => Some("The account is disconnected."),
        "cancelled" => Some("Nothing was connected."),
        _ => None,
    }
}

struct IdentityItem {
    id: String,
    provider_id: String,
    provider_name: String,
    logo: String,
    email: Option<String>,
    linked_at: String,
    linked_iso: String,
    last_used_at: String,
    last_used_iso: String,
    current: bool,
}

struct ProviderItem {
    id: String,
    name: String,
    logo: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    brand: Brand,
    notice: Option<&'static str>,
    identities: Vec<IdentityItem>,
    can_disconnect: bool,
    available: Vec<ProviderItem>,
    csrf: String,
    step_up_minutes: i64,
}

fn shown(secs: i64) -> (String, String) {
    let at = DateTime::from_timestamp(secs, 0).unwrap_or_default();
    (
        at.format("%Y-%m-%d %H:%M UTC").to_string(),
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn refused(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    error_page(status, title, message)
}

fn to_account(done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/account?done={done}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The signed-in session and its cookie's value, if any. A session whose identity is gone or
/// needs a new upstream login (its upstream grant ended) counts as signed out here: it may not
/// change the user's accounts, and `/account` signs in again.
async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<(Session, String)>, HttpResponse> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    match session::current(&state.store, req, &state.settings).await {
        Ok(s) => Ok(s
            .filter(|s| !s.needs_login)
            .map(|s| (s, cookie.value().to_owned()))),
        Err(e) => Err(server_error_page(e)),
    }
}

#[get("/account")]
pub async fn account_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (session, cookie) = match signed_in(&req, &state).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            // Each visit saves a pending login: bounded per address, as `/authorize` is.
            let ip = crate::ops::client_ip::client_ip(&req);
            if let Some(limited) = state.limits.check_ip(ip) {
                return limited;
            }
            let purpose = Purpose::Account(AccountLogin::SignIn);
            return begin_login(&req, &state, &purpose, None).await;
        }
        Err(page) => return page,
    };
    let (linked, all) = match tokio::try_join!(
        identities::of_user(&state.store, &session.user_id),
        crate::providers::repo::all(&state.store),
    ) {
        Ok(found) => found,
        Err(e) => return server_error_page(e),
    };
    let provider = |id: &str| all.iter().find(|p| p.id.as_str() == id);
    let identities = linked
        .iter()
        .map(|i| {
            let p = provider(&i.provider_id);
            let (linked_at, linked_iso) = shown(i.created_at);
            let (last_used_at, last_used_iso) = shown(i.updated_at);
            IdentityItem {
                id: i.id.clone(),
                provider_id: i.provider_id.clone(),
                provider_name: p.map_or_else(|| i.provider_id.clone(), |p| p.display_name.clone()),
                logo: p.map_or_else(String::new, |p| super::logos::url(p.kind)),
                email: i.email.clone(),
                linked_at,
                linked_iso,
                last_used_at,
                last_used_iso,
                current: i.id == session.identity_id,
            }
        })
        .collect();
    let available = all
        .iter()
        .filter(|p| p.enabled && !linked.iter().any(|i| i.provider_id == p.id.as_str()))
        .map(|p| ProviderItem {
            id: p.id.to_string(),
            name: p.display_name.clone(),
            logo: super::logos::url(p.kind),
        })
        .collect();
    let page = AccountPage {
        brand: Brand::current(),
        notice: notice(query.get("done").map(String::as_str)),
        identities,
        can_disconnect: linked.len() > 1,
        available,
        csrf: session::form_token(CSRF_PURPOSE, &cookie),
        step_up_minutes: STEP_UP_MAX_AGE_SECS / 60,
    };
    render(StatusCode::OK, &page)
}

/// A checked account form: the signed-in session, and the form's fields.
async fn checked_form(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Session, HashMap<String, String>), HttpResponse> {
    let bad = |message: &str| refused(StatusCode::BAD_REQUEST, "Nothing was changed", message);
    if body.len() > MAX_FORM_BYTES {
        return Err(bad("The form was too large."));
    }
    let Ok(form) = parse_form(body) else {
        return Err(bad("The form was malformed."));
    };
    let Some((session, cookie)) = signed_in(req, state).await? else {
        // No session in this browser (or a cross-site POST, which carries no cookie).
        return Err(refused(
            StatusCode::FORBIDDEN,
            "Please sign in",
            "Your session has ended. Open your account page and sign in again.",
        ));
    };
    let presented = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !session::form_token_matches(CSRF_PURPOSE, &cookie, presented) {
        tracing::warn!(user_id = %session.user_id, "account form refused: bad CSRF token");
        return Err(refused(
            StatusCode::FORBIDDEN,
            "Nothing was changed",
            "This form has expired or came from elsewhere. Open your account page and try again.",
        ));
    }
    // Each change starts a sign-in round trip and writes rows: bounded per address and user.
    let limited = (state.limits.check_ip(crate::ops::client_ip::client_ip(req)))
        .or_else(|| state.limits.check_account(&session.user_id));
    if let Some(limited) = limited {
        return Err(limited);
    }
    // A provider an admin turned off no longer vouches for anyone: a session it made may not
    // change the user's accounts (nor step up there).
    match crate::providers::repo::find(&state.store, &session.provider_id).await {
        Ok(Some(p)) if p.enabled => {}
        Ok(_) => {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "Nothing was changed",
                "The sign-in method of this session is no longer available. Sign out, then \
                 sign in with another of your accounts to make this change.",
            ));
        }
        Err(e) => return Err(server_error_page(e)),
    }
    Ok((session, form))
}

/// Whether the session's sign-in is too old for a change to the user's accounts: only the
/// time the provider stated counts, so a session whose login the provider did not date (an IdP
/// answering silently from its own session, GitHub) always signs in again first.
fn needs_step_up(session: &Session) -> bool {
    let now = crate::store::now();
    session
        .stated_auth_time
        .is_none_or(|at| now - at > STEP_UP_MAX_AGE_SECS)
}

/// Whether a step-up login at `provider`, started at `started_at`, proves a new
/// authentication: the provider must state one since (OIDC `auth_time`, which `max_age=0`
/// asks for; SAML AuthnInstant). A provider that can never state it (GitHub) was sent its
/// forced account chooser, which is all that can be asked of it (docs/account.md).
fn step_up_proven(provider: &Provider, started_at: i64, identity: &UpstreamIdentity) -> bool {
    if provider.kind.states_auth_time() {
        stated_since(started_at, identity.auth_time)
    } else {
        true
    }
}

/// Sends the user to sign in again at the session's provider, then to do `then`.
async fn step_up(
    req: &HttpRequest,
    state: &AppState,
    s: &Session,
    then: AccountAction,
) -> HttpResponse {
    let purpose = Purpose::Account(AccountLogin::StepUp {
        user_id: s.user_id.clone(),
        session_id: s.id.clone(),
        provider_id: s.provider_id.clone(),
        then,
    });
    begin_login(req, state, &purpose, Some(&s.provider_id)).await
}

/// Starts connecting `provider_id` to the session's user: an upstream login there whose
/// pending row names the user and the session.
async fn start_link(
    req: &HttpRequest,
    state: &AppState,
    user_id: &str,
    session_id: &str,
    provider_id: &str,
) -> HttpResponse {
    let purpose = Purpose::Account(AccountLogin::Link {
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        provider_id: provider_id.to_owned(),
    });
    begin_login(req, state, &purpose, Some(provider_id)).await
}

#[post("/account/connect")]
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match checked_form(&req, &state, &body).await {
        Ok(checked) => checked,
        Err(page) => return page,
    };
    let provider_id = form.get("provider").map(String::as_str).unwrap_or_default();
    match crate::providers::repo::find(&state.store, provider_id).await {
        Ok(Some(p)) if p.enabled => {}
        Ok(_) => {
            let message = "That sign-in method is not available.";
            return refused(StatusCode::BAD_REQUEST, "Unknown sign-in method", message);
        }
        Err(e) => return server_error_page(e),
    }
    let linked = match state.store.pool().acquire().await {
        Ok(mut conn) => identities::user_has_at_in(&mut conn, &session.user_id, provider_id).await,
        Err(e) => Err(e.into()),
    };
    match linked {
        Ok(false) => {}
        Ok(true) => return to_account("already"),
        Err(e) => return server_error_page(e),
    }
    if needs_step_up(&session) {
        let then = AccountAction::Connect {
            provider_id: provider_id.to_owned(),
        };
        return step_up(&req, &state, &session, then).await;
    }
    start_link(&req, &state, &session.user_id, &session.id, provider_id).await
}

#[post("/account/disconnect")]
pub async fn disconnect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match checked_form(&req, &state, &body).await {
        Ok(checked) => checked,
        Err(page) => return page,
    };
    let identity_id = form.get("identity").map(String::as_str).unwrap_or_default();
    if needs_step_up(&session) {
        let then = AccountAction::Disconnect {
            identity_id: identity_id.to_owned(),
        };
        return step_up(&req, &state, &session, then).await;
    }
    unlink(&req, &state, &session.user_id, identity_id).await
}

/// Disconnects `identity_id` from `user_id` (the user's own request) and shows the result.
async fn unlink(
    req: &HttpRequest,
    state: &AppState,
    user_id: &str,
    identity_id: &str,
) -> HttpResponse {
    let caller = links::self_service(user_id, client_ip_text(req));
    let result = async {
        let mut tx = state.store.begin_write().await?;
        links::unlink_in(&mut tx, user_id, identity_id, &caller, Via::Account).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        Ok::<_, LinkError>(())
    }
    .await;
    match result {
        Ok(()) => to_account("disconnected"),
        Err(LinkError::LastIdentity) => refused(
            StatusCode::CONFLICT,
            "This account cannot be disconnected",
            "It is your only way to sign in. Connect another account first.",
        ),
        Err(LinkError::IdentityNotFound(_) | LinkError::UserNotFound(_)) => refused(
            StatusCode::NOT_FOUND,
            "Nothing was changed",
            "That account is not connected to you.",
        ),
        Err(LinkError::BelongsToAnother { .. } | LinkError::SameProvider) => refused(
            StatusCode::CONFLICT,
            "Nothing was changed",
            "That account is not connected to you.",
        ),
        Err(LinkError::Store(e)) => server_error_page(e),
    }
}

/// The end of an account login (after the callback or the SAML completion step checked the
/// state, the browser binding and the provider): what the pending row says it is for.
pub async fn finish(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    login: &AccountLogin,
    started_at: i64,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    match login {
        AccountLogin::SignIn => sign_in(req, state, provider, identity).await,
        AccountLogin::StepUp {
            user_id,
            session_id,
            provider_id,
            then,
        } => {
            let step = StepUp {
                user_id,
                session_id,
                provider_id,
                started_at,
            };
            let cookie = match stepped_up(req, state, provider, &step, identity).await {
                Ok(cookie) => cookie,
                Err(page) => return page,
            };
            let mut response = match then {
                AccountAction::Connect { provider_id } => {
                    start_link(req, state, user_id, session_id, provider_id).await
                }
                AccountAction::Disconnect { identity_id } => {
                    unlink(req, state, user_id, identity_id).await
                }
            };
            match response.add_cookie(&cookie) {
                Ok(()) => response,
                Err(e) => server_error_page(e),
            }
        }
        AccountLogin::Link {
            user_id,
            session_id,
            provider_id,
        } => {
            if provider.id.as_str() != provider_id {
                let reason = "the link login came back from another provider than the one asked";
                record_failure(state, req, Some(provider.id.as_str()), None, &reason).await;
                return expired_page();
            }
            link(req, state, provider, user_id, session_id, identity).await
        }
        // Never a login: a confirmation has no upstream state to come back with.
        AccountLogin::Confirm { .. } => expired_page(),
    }
}

/// A signed-out visitor's sign-in: the user is found, linked or created as at any login, the
/// session starts, and the browser goes to `/account`.
async fn sign_in(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    let result = async {
        let mut tx = state.store.begin_write().await?;
        let (_, cookie) = log_in_in(&mut tx, req, state, provider, identity, None).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        Ok::<_, LoginError>(cookie)
    }
    .await;
    match result {
        Ok(cookie) => {
            let mut response = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/account"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
            if let Err(e) = response.add_cookie(&cookie) {
                return server_error_page(e);
            }
            response
        }
        Err(LoginError::Disabled { user_id }) => {
            let reason = format!("user {user_id} is disabled");
            record_failure(state, req, Some(provider.id.as_str()), None, &reason).await;
            refused(
                StatusCode::FORBIDDEN,
                "Sign-in not allowed",
                "This account is disabled. If you think it should not be, tell your administrator.",
            )
        }
        Err(LoginError::Store(e)) => server_error_page(e),
    }
}

/// The session whose user asked for an account login, still live in this browser and still
/// that user's; the page to show otherwise.
async fn same_session(
    req: &HttpRequest,
    state: &AppState,
    user_id: &str,
    session_id: &str,
) -> Result<Session, HttpResponse> {
    match signed_in(req, state).await? {
        Some((s, _)) if s.id == session_id && s.user_id == user_id => Ok(s),
        _ => Err(expired_page()),
    }
}

/// What a step-up login must match.
struct StepUp<'a> {
    user_id: &'a str,
    session_id: &'a str,
    provider_id: &'a str,
    started_at: i64,
}

/// Checks a step-up login: the same session in this browser, the provider it came through,
/// a real new authentication, and the same user; then records the new sign-in time on the
/// session (and the identity's fresh claims and tokens) and gives the session a new cookie
/// (returned): the fresh window belongs to this browser's new cookie only.
async fn stepped_up(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    step: &StepUp<'_>,
    identity: &UpstreamIdentity,
) -> Result<actix_web::cookie::Cookie<'static>, HttpResponse> {
    let session = same_session(req, state, step.user_id, step.session_id).await?;
    let fail = async |reason: &str| {
        record_failure(state, req, Some(provider.id.as_str()), None, &reason).await;
    };
    if provider.id.as_str() != step.provider_id {
        fail("the step-up login came back from another provider").await;
        return Err(expired_page());
    }
    if !step_up_proven(provider, step.started_at, identity) {
        fail("the IdP did not authenticate the user again, as the step-up asked").await;
        return Err(refused(
            StatusCode::FORBIDDEN,
            "Please sign in again",
            "Your sign-in provider used an earlier sign-in instead of asking you again. \
             Please try again; if this keeps happening, tell your administrator.",
        ));
    }
    let result = async {
        let mut tx = state.store.begin_write().await?;
        let found =
            identities::find_by_subject_in(&mut tx, provider.id.as_str(), &identity.subject)
                .await?;
        let Some((identity_id, _)) = found.filter(|(_, owner)| owner == step.user_id) else {
            return Ok(None);
        };
        users::update_claims(
            &mut tx,
            &state.sealer,
            step.user_id,
            &identity_id,
            identity,
            provider.trust_email,
        )
        .await?;
        let now = crate::store::now();
        let auth_time = identity.auth_time.map_or(now, |t| t.min(now));
        let stated = identity.auth_time.map(|t| t.min(now));
        sessions::reauthenticated_in(&mut tx, &session.id, auth_time, stated).await?;
        let cookie = session::rotate(&mut tx, &state.settings, &session.id).await?;
        let login = Succeeded {
            user_id: step.user_id,
            client_id: None,
            new_user: false,
            step_up: true,
        };
        record_success_in(&mut tx, req, provider, identity, &login).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(Some(cookie))
    }
    .await;
    match result {
        Ok(Some(cookie)) => Ok(cookie),
        Ok(None) => {
            fail("the step-up login was another user's").await;
            Err(refused(
                StatusCode::FORBIDDEN,
                "Nothing was changed",
                "You signed in again with a different account than the one you are signed in \
                 with. Sign in again with the same account to make this change.",
            ))
        }
        Err(e) => Err(server_error_page(e)),
    }
}

/// The end of a connect login: an account already known (this user's or another's) goes
/// straight to [`commit_link`], which changes nothing for it; a new one is kept, server-side
/// and sealed, until the user confirms it on a page that names it ([`confirm_page`]), so that
/// whichever account the provider's session held is never linked unseen.
async fn link(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    user_id: &str,
    session_id: &str,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    if let Err(page) = same_session(req, state, user_id, session_id).await {
        let reason = "the link login reached a browser without the session that asked";
        record_failure(state, req, Some(provider.id.as_str()), None, &reason).await;
        return page;
    }
    let known = async {
        let mut conn = state.store.pool().acquire().await?;
        identities::find_by_subject_in(&mut conn, provider.id.as_str(), &identity.subject).await
    }
    .await;
    match known {
        Ok(Some(_)) => return commit_link(req, state, provider, user_id, identity).await,
        Ok(None) => {}
        Err(e) => return server_error_page(e),
    }
    let purpose = Purpose::Account(AccountLogin::Confirm {
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        provider_id: provider.id.to_string(),
    });
    let held = async {
        let (id, cookie) = save_bound(req, state, &purpose).await?;
        let json = serde_json::to_string(identity)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        pending::complete(&state.store, &state.sealer, &id, &json).await?;
        Ok::<_, crate::store::StoreError>((id, cookie))
    }
    .await;
    match held {
        Ok((id, cookie)) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/account/confirm?c={id}")))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(cookie)
            .finish(),
        Err(e) => server_error_page(e),
    }
}

/// A held connect `id` as this browser and session may see it: the user, session and
/// provider it is for; the page to show otherwise.
async fn held_connect(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<String, HttpResponse> {
    let found = match pending::find(&state.store, id).await {
        Ok(found) => found,
        Err(e) => return Err(server_error_page(e)),
    };
    let login_cookie = req.cookie(LOGIN_COOKIE);
    let Some(p) =
        found.filter(|p| p.is_live() && p.belongs_to(login_cookie.as_ref().map(|c| c.value())))
    else {
        return Err(expired_page());
    };
    match p.purpose {
        Purpose::Account(AccountLogin::Confirm {
            user_id,
            session_id,
            provider_id,
        }) if user_id == session.user_id && session_id == session.id => Ok(provider_id),
        _ => Err(expired_page()),
    }
}

/// A held identity's JSON, read back.
fn held_identity(json: &secrecy::SecretString) -> serde_json::Result<UpstreamIdentity> {
    serde_json::from_str(secrecy::ExposeSecret::expose_secret(json))
}

#[derive(Template)]
#[template(path = "account_confirm.html")]
struct ConfirmPage {
    brand: Brand,
    id: String,
    account: String,
    provider_name: String,
    user: String,
    csrf: String,
}

/// Asks the user to confirm connecting a held account, naming it and the user.
#[get("/account/confirm")]
pub async fn confirm_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let (session, cookie) = match signed_in(&req, &state).await {
        Ok(Some(found)) => found,
        Ok(None) => return expired_page(),
        Err(page) => return page,
    };
    let id = query.get("c").map(String::as_str).unwrap_or_default();
    let provider_id = match held_connect(&req, &state, &session, id).await {
        Ok(held) => held,
        Err(page) => return page,
    };
    let opened = async {
        let identity = pending::completed(&state.store, &state.sealer, id).await?;
        let provider = crate::providers::repo::find(&state.store, &provider_id).await?;
        let user = users::repo::find(&state.store, &session.user_id).await?;
        Ok::<_, crate::store::StoreError>((identity, provider, user))
    }
    .await;
    let (identity, provider, user) = match opened {
        Ok((Some(identity), Some(provider), Some(user))) => (identity, provider, user),
        Ok(_) => return expired_page(),
        Err(e) => return server_error_page(e),
    };
    let identity = match held_identity(&identity) {
        Ok(identity) => identity,
        Err(e) => return server_error_page(e),
    };
    let page = ConfirmPage {
        brand: Brand::current(),
        id: id.to_owned(),
        account: identity
            .email
            .clone()
            .unwrap_or_else(|| identity.subject.clone()),
        provider_name: provider.display_name.clone(),
        user: user.email.or(user.name).unwrap_or(user.id),
        csrf: session::form_token(CSRF_PURPOSE, &cookie),
    };
    render(StatusCode::OK, &page)
}

/// The user's answer to [`confirm_page`]: connect (the held account is taken, single use, and
/// linked as any connect) or cancel (it is dropped).
#[post("/account/confirm")]
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match checked_form(&req, &state, &body).await {
        Ok(checked) => checked,
        Err(page) => return page,
    };
    let id = form.get("c").map(String::as_str).unwrap_or_default();
    let provider_id = match held_connect(&req, &state, &session, id).await {
        Ok(held) => held,
        Err(page) => return page,
    };
    if form.get("decision").map(String::as_str) != Some("connect") {
        return match pending::delete(&state.store, id).await {
            Ok(()) => to_account("cancelled"),
            Err(e) => server_error_page(e),
        };
    }
    let taken = async {
        let taken = pending::take_completed(&state.store, &state.sealer, id).await?;
        let provider = crate::providers::repo::find(&state.store, &provider_id).await?;
        Ok::<_, crate::store::StoreError>((taken, provider))
    }
    .await;
    let (identity, provider) = match taken {
        Ok((Some((_, identity)), Some(provider))) if provider.enabled => (identity, provider),
        Ok(_) => return expired_page(),
        Err(e) => return server_error_page(e),
    };
    let identity = match held_identity(&identity) {
        Ok(identity) => identity,
        Err(e) => return server_error_page(e),
    };
    commit_link(&req, &state, &provider, &session.user_id, &identity).await
}

/// Connects `identity` to `user_id` (the user's own request), unless it is another user's.
async fn commit_link(
    req: &HttpRequest,
    state: &AppState,
    provider: &Provider,
    user_id: &str,
    identity: &UpstreamIdentity,
) -> HttpResponse {
    let caller = links::self_service(user_id, client_ip_text(req));
    let result = async {
        let mut tx = state.store.begin_write().await?;
        let linked = links::link_in(
            &mut tx,
            &state.sealer,
            user_id,
            identity,
            &caller,
            Via::Account,
        )
        .await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        Ok::<_, LinkError>(linked)
    }
    .await;
    match result {
        Ok(Linked::New { .. }) => to_account("connected"),
        Ok(Linked::Already { .. }) => to_account("already"),
        Err(LinkError::BelongsToAnother { other_user_id }) => {
            let provider_id = provider.id.as_str();
            let audited = async {
                let mut tx = state.store.begin_write().await?;
                links::record_refusal_in(&mut tx, &caller, user_id, provider_id, &other_user_id)
                    .await?;
                tx.commit().await?;
                Ok::<_, crate::store::StoreError>(())
            }
            .await;
            if let Err(e) = audited {
                return server_error_page(e);
            }
            let reason = "account linking refused: the identity belongs to another user";
            record_failure(state, req, Some(provider_id), None, &reason).await;
            refused(
                StatusCode::CONFLICT,
                "This account is already connected to someone else",
                "The account you signed in with is already connected to a different user here. \
                 Nothing was changed. An administrator must resolve this; tell yours.",
            )
        }
        Err(LinkError::UserNotFound(_)) => expired_page(),
        Err(LinkError::SameProvider) => refused(
            StatusCode::CONFLICT,
            "Nothing was changed",
            "You already have an account at this sign-in method connected. Disconnect it \
             first to connect a different one.",
        ),
        Err(LinkError::IdentityNotFound(_) | LinkError::LastIdentity) => expired_page(),
        Err(LinkError::Store(e)) => server_error_page(e),
    }
}
