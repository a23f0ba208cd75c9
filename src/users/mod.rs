//! Users and their upstream identities.
//!
//! A user has one or more identities, each a (provider, subject) pair. The first login through
//! an identity creates its user (`user.created`), unless the provider is trusted for e-mail
//! (`trust_email`), the provider says the address is verified, and a user already holds that
//! verified address: then the identity joins that user (`identity.linked`). Claims are copied
//! from the identity on every login and on every upstream refresh.

pub mod admin_ops;

use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::crypto::{SealTarget, Sealer};
use crate::events::{self, EventType};
use crate::store::{self, Store, StoreError};
use crate::upstream::UpstreamIdentity;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the user is disabled")]
    Disabled { user_id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for LoginError {
    fn from(e: sqlx::Error) -> Self {
        LoginError::Store(StoreError::Database(e))
    }
}

/// The claims Portico serves for a user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub user_id: String,
    pub identity_id: String,
    pub new_user: bool,
}

const IDENTITY_TABLE: &str = "identities";

fn groups_json(groups: &[String]) -> String {
    serde_json::to_string(groups).expect("groups serialise")
}

/// Applies a successful upstream login inside the caller's transaction: finds, links or
/// creates the user, refreshes claims, stores the upstream refresh token sealed, and records
/// `user.created` / `identity.linked`.
pub async fn apply_login(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    identity: &UpstreamIdentity,
    trust_email: bool,
) -> Result<LoginOutcome, LoginError> {
    let now = store::now();
    let existing = sqlx::query(
        "SELECT i.id, i.user_id, u.disabled FROM identities i JOIN users u ON u.id = i.user_id \
         WHERE i.provider_id = $1 AND i.subject = $2",
    )
    .bind(identity.provider.as_str())
    .bind(&identity.subject)
    .fetch_optional(&mut *conn)
    .await?;

    let (user_id, identity_id, new_user) = if let Some(row) = existing {
        let identity_id: String = row.try_get(0)?;
        let user_id: String = row.try_get(1)?;
        if row.try_get::<i64, _>(2)? != 0 {
            return Err(LoginError::Disabled { user_id });
        }
        (user_id, identity_id, false)
    } else {
        let linked = match (&identity.email, trust_email && identity.email_verified) {
            (Some(email), true) => sqlx::query(
                "SELECT id, disabled FROM users WHERE email = $1 AND email_verified = 1 \
                 ORDER BY created_at LIMIT 1",
            )
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| -> Result<(String, bool), sqlx::Error> {
                Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? != 0))
            })
            .transpose()?,
            _ => None,
        };
        let identity_id = uuid::Uuid::new_v4().to_string();
        let (user_id, new_user) = match linked {
            Some((user_id, true)) => return Err(LoginError::Disabled { user_id }),
            Some((user_id, false)) => (user_id, false),
            None => {
                let user_id = uuid::Uuid::new_v4().to_string();
                sqlx::query(
                    "INSERT INTO users (id, email, email_verified, name, picture, groups, \
                     disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)",
                )
                .bind(&user_id)
                .bind(&identity.email)
                .bind(i64::from(identity.email_verified))
                .bind(&identity.name)
                .bind(&identity.picture)
                .bind(groups_json(&identity.groups))
                .bind(now)
                .execute(&mut *conn)
                .await?;
                (user_id, true)
            }
        };
        sqlx::query(
            "INSERT INTO identities (id, user_id, provider_id, subject, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&identity_id)
        .bind(&user_id)
        .bind(identity.provider.as_str())
        .bind(&identity.subject)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if new_user {
            events::record(
                &mut *conn,
                EventType::UserCreated,
                json!({
                    "user_id": user_id,
                    "provider": identity.provider.as_str(),
                    "email": identity.email,
                }),
            )
            .await?;
        } else {
            events::record(
                &mut *conn,
                EventType::IdentityLinked,
                json!({ "user_id": user_id, "provider": identity.provider.as_str() }),
            )
            .await?;
        }
        (user_id, identity_id, new_user)
    };

    update_claims(&mut *conn, sealer, &user_id, &identity_id, identity).await?;
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&user_id)
        .execute(&mut *conn)
        .await?;
    Ok(LoginOutcome {
        user_id,
        identity_id,
        new_user,
    })
}

/// Copies an identity's fresh claims to the identity row and to its user, and stores a new
/// upstream refresh token (sealed to the identity row) when one came.
pub async fn update_claims(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    user_id: &str,
    identity_id: &str,
    identity: &UpstreamIdentity,
) -> Result<(), StoreError> {
    let now = store::now();
    let groups = groups_json(&identity.groups);
    let sealed_refresh = identity
        .tokens
        .as_ref()
        .and_then(|t| t.refresh_token.as_ref())
        .map(|t| {
            sealer.seal_str(
                t.expose_secret(),
                SealTarget::new(IDENTITY_TABLE, "refresh_token", identity_id),
            )
        });
    sqlx::query(
        "UPDATE identities SET email = $1, email_verified = $2, name = $3, picture = $4, \
         groups = $5, refresh_token = COALESCE($6, refresh_token), updated_at = $7 WHERE id = $8",
    )
    .bind(&identity.email)
    .bind(i64::from(identity.email_verified))
    .bind(&identity.name)
    .bind(&identity.picture)
    .bind(&groups)
    .bind(sealed_refresh)
    .bind(now)
    .bind(identity_id)
    .execute(&mut *conn)
    .await?;
    if let Some(tokens) = &identity.tokens {
        crate::vault::store_tokens(&mut *conn, sealer, identity_id, tokens).await?;
    }
    sqlx::query(
        "UPDATE users SET email = $1, email_verified = $2, name = $3, picture = $4, groups = $5, \
         updated_at = $6 WHERE id = $7",
    )
    .bind(&identity.email)
    .bind(i64::from(identity.email_verified))
    .bind(&identity.name)
    .bind(&identity.picture)
    .bind(&groups)
    .bind(now)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    pub async fn user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email, email_verified, name, picture, groups, disabled FROM users \
             WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Disables a user: no new logins, no refresh.
    pub async fn disable_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET disabled = 1, updated_at = $1 WHERE id = $2")
            .bind(store::now())
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

pub fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        email_verified: r.try_get::<i64, _>("email_verified")? != 0,
        name: r.try_get("name")?,
        picture: r.try_get("picture")?,
        groups: serde_json::from_str(&r.try_get::<String, _>("groups")?).unwrap_or_default(),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}
