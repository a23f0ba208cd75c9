//! The SSO session cookie: `HttpOnly`, holding a random token whose digest finds the session
//! row (`grants::sessions`). Idle and absolute timeouts; ended by logout (and by admins).

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use secrecy::ExposeSecret;
use sqlx::AnyConnection;

use crate::config::Settings;
use crate::crypto::random_token;
use crate::grants::sessions;
use crate::store::{self, Store, StoreError};
use crate::users;

pub use crate::grants::sessions::Session;

pub const SESSION_COOKIE: &str = "portico_session";
/// Binds a pending authorization to the browser that started it (login CSRF defence).
pub const LOGIN_COOKIE: &str = "portico_login";

/// A cookie with Portico's attributes: HttpOnly, SameSite=Lax, Secure behind https.
pub fn cookie(
    settings: &Settings,
    name: impl Into<std::borrow::Cow<'static, str>>,
    value: String,
    max_age: i64,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(settings.server.issuer.is_https())
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

/// A form's CSRF token, bound to the session cookie (which only this browser sends and no
/// other site can read) and to the form's `purpose`, so that one form's token fits no other.
pub fn form_token(purpose: &str, session_cookie: &str) -> String {
    use base64::Engine;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"portico ");
    ctx.update(purpose.as_bytes());
    ctx.update(b"\0");
    ctx.update(session_cookie.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
}

/// Whether `presented` is [`form_token`] of `purpose` for `session_cookie` (constant time).
pub fn form_token_matches(purpose: &str, session_cookie: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = form_token(purpose, session_cookie);
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

pub fn removal(
    settings: &Settings,
    name: impl Into<std::borrow::Cow<'static, str>>,
) -> Cookie<'static> {
    cookie(settings, name, String::new(), 0)
}

/// The live session behind the request's cookie, touched (its idle timer restarted), whose
/// user is active; with whether its identity needs a new upstream login.
pub async fn current(
    store: &Store,
    req: &HttpRequest,
    settings: &Settings,
) -> Result<Option<Session>, StoreError> {
    let Some(c) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(mut session) =
        sessions::touch(store, c.value(), settings.oidc.session_idle_secs).await?
    else {
        return Ok(None);
    };
    if !users::repo::is_active(store, &session.user_id).await? {
        return Ok(None);
    }
    // A missing identity needs a login too.
    let identity = users::identities::grant_state(store, &session.identity_id).await?;
    session.needs_login = identity.is_none_or(|i| i.needs_login);
    Ok(Some(session))
}

/// Gives session `id` a new cookie token in the caller's transaction (the old cookie stops
/// working); returns the cookie to set. After a step-up, so that a cookie (and the CSRF
/// tokens bound to it) taken before does not share the fresh sign-in.
pub async fn rotate(
    conn: &mut AnyConnection,
    settings: &Settings,
    id: &str,
) -> Result<Cookie<'static>, StoreError> {
    let token = random_token("");
    sessions::rotate_token_in(conn, id, token.expose_secret()).await?;
    Ok(cookie(
        settings,
        SESSION_COOKIE,
        token.expose_secret().to_owned(),
        settings.oidc.session_absolute_secs as i64,
    ))
}

/// Starts a session in the caller's transaction; returns it and the cookie to set.
/// `auth_time` is when the user authenticated, as the provider says (an ID token's
/// `auth_time`, a SAML AuthnInstant), never later than now; `None`: now, and the session
/// records that the provider did not say (it is then never recent enough for account changes).
pub async fn start(
    conn: &mut AnyConnection,
    settings: &Settings,
    user_id: &str,
    identity_id: &str,
    provider_id: &str,
    auth_time: Option<i64>,
) -> Result<(Session, Cookie<'static>), StoreError> {
    let now = store::now();
    let token = random_token("");
    let new = sessions::NewSession {
        token: token.expose_secret(),
        user_id,
        identity_id,
        provider_id,
        auth_time: auth_time.map_or(now, |t| t.min(now)),
        stated_auth_time: auth_time.map(|t| t.min(now)),
        expires_at: now + settings.oidc.session_absolute_secs as i64,
    };
    let session = sessions::start_in(conn, &new).await?;
    let cookie = cookie(
        settings,
        SESSION_COOKIE,
        token.expose_secret().to_owned(),
        settings.oidc.session_absolute_secs as i64,
    );
    Ok((session, cookie))
}
