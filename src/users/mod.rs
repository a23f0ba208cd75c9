//! Users and their upstream identities.
//!
//! A user has one or more identities, each a (provider, subject) pair. The first login through
//! an identity creates its user (`user.created`), unless the provider vouches for the address
//! (see [`vouched`]) and a user already holds that address as verified by a provider that is
//! trusted for e-mail now: then the identity joins that user (`identity.linked`). Claims are
//! copied from the identity on every login and on every upstream refresh.
//!
//! The one rule for `email_verified`: a user's address is verified only when a provider
//! trusted for e-mail (`trust_email`) asserted it verified. The user row records which
//! provider that was (`email_verified_by`), so that linking can check that the provider is
//! still trusted, and the downstream `email_verified` claim means exactly this. A provider not
//! trusted for e-mail can create users with any address, but never a verified one, so it can
//! never pre-claim an account that a trusted provider's login would later join.

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

/// Whether Portico treats `identity`'s address as verified: the provider said so, and the
/// provider is trusted for e-mail. The downstream `email_verified` claim is this value.
pub fn vouched(identity: &UpstreamIdentity, trust_email: bool) -> bool {
    trust_email && identity.email_verified && identity.email.is_some()
}

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
        let verified = vouched(identity, trust_email);
        let linked = match (&identity.email, verified) {
            // Only into a user whose address a provider trusted for e-mail (now) verified.
            (Some(email), true) => sqlx::query(
                "SELECT u.id, u.disabled FROM users u JOIN providers p \
                 ON p.id = u.email_verified_by AND p.trust_email = 1 \
                 WHERE u.email = $1 AND u.email_verified = 1 \
                 ORDER BY u.created_at LIMIT 1",
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
                    "INSERT INTO users (id, email, email_verified, email_verified_by, name, \
                     picture, groups, disabled, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
                )
                .bind(&user_id)
                .bind(&identity.email)
                .bind(i64::from(verified))
                .bind(verified.then(|| identity.provider.as_str()))
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

    update_claims(
        &mut *conn,
        sealer,
        &user_id,
        &identity_id,
        identity,
        trust_email,
    )
    .await?;
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
/// upstream refresh token (sealed to the identity row) when one came. The identity row keeps
/// what the provider said; the user's `email_verified` is [`vouched`].
pub async fn update_claims(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    user_id: &str,
    identity_id: &str,
    identity: &UpstreamIdentity,
    trust_email: bool,
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
    let verified = vouched(identity, trust_email);
    sqlx::query(
        "UPDATE users SET email = $1, email_verified = $2, email_verified_by = $3, name = $4, \
         picture = $5, groups = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&identity.email)
    .bind(i64::from(verified))
    .bind(verified.then(|| identity.provider.as_str()))
    .bind(&identity.name)
    .bind(&identity.picture)
    .bind(&groups)
    .bind(now)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Withdraws the verification that `provider_id` gave (it is no longer trusted for e-mail, or
/// gone): its users' addresses are unverified until a provider that vouches signs them in, and
/// no login links into them. Returns how many users it touched.
pub async fn withdraw_verification_in(
    conn: &mut AnyConnection,
    provider_id: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE users SET email_verified = 0, email_verified_by = NULL, updated_at = $1 \
         WHERE email_verified_by = $2",
    )
    .bind(store::now())
    .bind(provider_id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
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
