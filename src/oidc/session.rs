//! SSO sessions: a server-side row behind an `HttpOnly` cookie holding a random token (the
//! database keeps its digest). Idle and absolute timeouts; ended by logout (and by admins).

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::config::Settings;
use crate::crypto::{TokenDigest, random_token};
use crate::events::{self, EventType};
use crate::store::{self, Store, StoreError};

pub const SESSION_COOKIE: &str = "portico_session";
/// Binds a pending authorization to the browser that started it (login CSRF defence).
pub const LOGIN_COOKIE: &str = "portico_login";

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub identity_id: String,
    pub provider_id: String,
    pub auth_time: i64,
    /// The identity's upstream grant has ended (an upstream refresh met `invalid_grant`): the
    /// session may not answer a new authorization without a new upstream login.
    pub needs_login: bool,
}

/// A cookie with Portico's attributes: HttpOnly, SameSite=Lax, Secure behind https.
pub fn cookie(
    settings: &Settings,
    name: &'static str,
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

pub fn removal(settings: &Settings, name: &'static str) -> Cookie<'static> {
    cookie(settings, name, String::new(), 0)
}

impl Store {
    /// The live session behind the request's cookie, touched (idle timer restarted).
    pub async fn current_session(
        &self,
        req: &HttpRequest,
        settings: &Settings,
    ) -> Result<Option<Session>, StoreError> {
        let Some(c) = req.cookie(SESSION_COOKIE) else {
            return Ok(None);
        };
        let now = store::now();
        let idle_from = now - settings.oidc.session_idle_secs as i64;
        let digest = TokenDigest::of(c.value());
        // The user check is a correlated EXISTS (a primary-key probe): SQLite evaluates
        // `user_id IN (SELECT id FROM users …)` by listing every user, which, inside this write,
        // held the write lock for a second per request at a million users.
        let row = sqlx::query(
            "UPDATE sso_sessions SET last_seen_at = $1 WHERE token_digest = $2 \
             AND ended_at IS NULL AND expires_at > $1 AND last_seen_at > $3 \
             AND EXISTS (SELECT 1 FROM users u WHERE u.id = sso_sessions.user_id \
             AND u.disabled = 0) \
             RETURNING id, user_id, identity_id, provider_id, auth_time, \
             (SELECT needs_login FROM identities i WHERE i.id = sso_sessions.identity_id)",
        )
        .bind(now)
        .bind(digest.as_bytes().to_vec())
        .bind(idle_from)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Session {
                id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                identity_id: r.try_get(2)?,
                provider_id: r.try_get(3)?,
                auth_time: r.try_get(4)?,
                needs_login: r.try_get::<Option<i64>, _>(5)?.unwrap_or(1) != 0,
            })
        })
        .transpose()
    }
}

/// Starts a session in the caller's transaction; returns it and the cookie to set.
/// `auth_time` is when the user authenticated, as the provider says (a SAML AuthnInstant),
/// never later than now; `None`: now.
pub async fn start(
    conn: &mut AnyConnection,
    settings: &Settings,
    user_id: &str,
    identity_id: &str,
    provider_id: &str,
    auth_time: Option<i64>,
) -> Result<(Session, Cookie<'static>), StoreError> {
    let now = store::now();
    let auth_time = auth_time.map_or(now, |t| t.min(now));
    let token = random_token("");
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO sso_sessions (id, token_digest, user_id, identity_id, provider_id, \
         auth_time, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(TokenDigest::of(token.expose_secret()).as_bytes().to_vec())
    .bind(user_id)
    .bind(identity_id)
    .bind(provider_id)
    .bind(auth_time)
    .bind(now)
    .bind(now + settings.oidc.session_absolute_secs as i64)
    .execute(&mut *conn)
    .await?;
    let cookie = cookie(
        settings,
        SESSION_COOKIE,
        token.expose_secret().to_owned(),
        settings.oidc.session_absolute_secs as i64,
    );
    Ok((
        Session {
            id,
            user_id: user_id.to_owned(),
            identity_id: identity_id.to_owned(),
            provider_id: provider_id.to_owned(),
            auth_time,
            needs_login: false,
        },
        cookie,
    ))
}

/// Ends the session behind `cookie_value` and records `session.ended`; false if none was live.
pub async fn end(store: &Store, cookie_value: &str, reason: &str) -> Result<bool, StoreError> {
    let digest = TokenDigest::of(cookie_value).as_bytes().to_vec();
    Ok(end_matching(store, Which::Token(digest), reason).await? > 0)
}

/// Ends every live session of a user (admin revocation, disabling). Returns how many ended.
pub async fn end_user_sessions(
    store: &Store,
    user_id: &str,
    reason: &str,
) -> Result<u64, StoreError> {
    end_matching(store, Which::User(user_id), reason).await
}

/// As [`end_user_sessions`], in the caller's transaction (the admin side commits it with its
/// audit entry).
pub async fn end_user_sessions_in(
    conn: &mut AnyConnection,
    user_id: &str,
    reason: &str,
) -> Result<u64, StoreError> {
    end_matching_in(conn, Which::User(user_id), reason).await
}

enum Which<'a> {
    Token(Vec<u8>),
    User(&'a str),
}

/// Ends the matching live sessions with one `session.ended` event each, in one transaction.
async fn end_matching(store: &Store, which: Which<'_>, reason: &str) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let ended = end_matching_in(&mut tx, which, reason).await?;
    tx.commit().await?;
    Ok(ended)
}

async fn end_matching_in(
    conn: &mut AnyConnection,
    which: Which<'_>,
    reason: &str,
) -> Result<u64, StoreError> {
    let column = match which {
        Which::Token(_) => "token_digest",
        Which::User(_) => "user_id",
    };
    let sql = format!(
        "UPDATE sso_sessions SET ended_at = $1 WHERE {column} = $2 AND ended_at IS NULL \
         RETURNING user_id"
    );
    let query = sqlx::query(&sql).bind(store::now());
    let query = match which {
        Which::Token(digest) => query.bind(digest),
        Which::User(id) => query.bind(id.to_owned()),
    };
    let ended = query.fetch_all(&mut *conn).await?;
    for row in &ended {
        let user_id: String = row.try_get(0)?;
        events::record(
            &mut *conn,
            EventType::SessionEnded,
            json!({ "user_id": user_id, "reason": reason }),
        )
        .await?;
    }
    Ok(ended.len() as u64)
}
