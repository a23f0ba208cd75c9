//! Server-side admin sessions behind an `HttpOnly`, `SameSite=Strict` cookie.
//!
//! The cookie holds a random token; the database holds only its SHA-256, the admin, the CSRF
//! synchronizer token and the times that enforce the idle and absolute timeouts.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{AnyConnection, Row};
use subtle::ConstantTimeEq;

use crate::admin::Caller;
use crate::admin::auth::accounts::Admin;
use crate::admin::http::error::PageError;
use crate::config::AdminSettings;
use crate::crypto::{TokenDigest, random_token};
use crate::ops::client_ip::client_ip_text as peer_ip;
use crate::state::AppState;
use crate::store::{self, Store, StoreError};

/// Touching `last_seen_at` at most this often keeps page views from each costing a write.
const TOUCH_EVERY_SECS: i64 = 30;

/// `__Host-` binds the cookie to this origin (Secure, Path=/, no Domain); it needs https.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-portico_admin"
    } else {
        "portico_admin"
    }
}

pub fn cookie(token: &SecretString, https: bool) -> Cookie<'static> {
    Cookie::build(cookie_name(https), token.expose_secret().to_owned())
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .finish()
}

pub fn removal_cookie(https: bool) -> Cookie<'static> {
    let mut cookie = cookie(&SecretString::from(String::new()), https);
    cookie.make_removal();
    cookie
}

/// A signed-in admin's session, loaded for this request.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub admin: Admin,
    pub csrf: String,
    pub ip: Option<String>,
    digest: TokenDigest,
}

impl AdminSession {
    /// Constant-time comparison with the form's token.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    /// Names this session without its secret: the digest of its cookie value (what the table
    /// keeps), in hex. What is bound to one session (a secret shown once) is bound to this.
    pub fn id(&self) -> String {
        self.digest.to_hex()
    }

    pub fn caller(&self) -> Caller {
        Caller {
            actor: self.admin.actor(),
            ip: self.ip.clone(),
        }
    }
}

/// A new session for `admin` in the caller's transaction; returns the cookie value.
pub async fn create(
    conn: &mut AnyConnection,
    admin: &Admin,
    ip: Option<&str>,
) -> Result<SecretString, StoreError> {
    let token = random_token("");
    let csrf = random_token("");
    let now = store::now();
    sqlx::query(
        "INSERT INTO admin_sessions (token_digest, admin_id, csrf_token, created_at, last_seen_at, ip) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(TokenDigest::of(token.expose_secret()).as_bytes().to_vec())
    .bind(&admin.id)
    .bind(csrf.expose_secret())
    .bind(now)
    .bind(now)
    .bind(ip)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// Deletes every timed-out session (run at each sign-in, so the table stays small).
pub async fn purge_expired(
    conn: &mut AnyConnection,
    settings: &AdminSettings,
) -> Result<(), StoreError> {
    let now = store::now();
    sqlx::query("DELETE FROM admin_sessions WHERE last_seen_at <= $1 OR created_at <= $2")
        .bind(now - settings.session_idle_secs as i64)
        .bind(now - settings.session_max_secs as i64)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The live session for a cookie value, touched; `None` if unknown or timed out (and then gone).
pub async fn load(
    store: &Store,
    token: &str,
    settings: &AdminSettings,
) -> Result<Option<(Admin, String, TokenDigest)>, StoreError> {
    let digest = TokenDigest::of(token);
    let row = sqlx::query(
        "SELECT admin_id, csrf_token, created_at, last_seen_at FROM admin_sessions \
         WHERE token_digest = $1",
    )
    .bind(digest.as_bytes().to_vec())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let now = store::now();
    let session_created: i64 = row.try_get("created_at")?;
    let last_seen: i64 = row.try_get("last_seen_at")?;
    let idle = now - last_seen >= settings.session_idle_secs as i64;
    let too_old = now - session_created >= settings.session_max_secs as i64;
    if idle || too_old {
        end(store, &digest).await?;
        return Ok(None);
    }
    if now - last_seen >= TOUCH_EVERY_SECS {
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE token_digest = $2")
            .bind(now)
            .bind(digest.as_bytes().to_vec())
            .execute(store.pool())
            .await?;
    }
    let admin_id: String = row.try_get("admin_id")?;
    let Some(admin) = crate::admin::auth::accounts::find(store, &admin_id).await? else {
        end(store, &digest).await?;
        return Ok(None);
    };
    Ok(Some((admin, row.try_get("csrf_token")?, digest)))
}

pub async fn end(store: &Store, digest: &TokenDigest) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM admin_sessions WHERE token_digest = $1")
        .bind(digest.as_bytes().to_vec())
        .execute(store.pool())
        .await?;
    Ok(())
}

impl AdminSession {
    /// Ends this session (sign-out).
    pub async fn end(&self, store: &Store) -> Result<(), StoreError> {
        end(store, &self.digest).await
    }
}

impl FromRequest for AdminSession {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let ip = peer_ip(req);
        let token = state.as_ref().and_then(|s| {
            req.cookie(cookie_name(s.settings.server.issuer.is_https()))
                .map(|c| c.value().to_owned())
        });
        Box::pin(async move {
            let state =
                state.ok_or_else(|| PageError::Internal(anyhow::anyhow!("no app state")))?;
            let token = token
                .filter(|t| !t.is_empty())
                .ok_or(PageError::SignInRequired)?;
            let (admin, csrf, digest) = load(&state.store, &token, &state.settings.admin)
                .await?
                .ok_or(PageError::SignInRequired)?;
            Ok(AdminSession {
                admin,
                csrf,
                ip,
                digest,
            })
        })
    }
}
