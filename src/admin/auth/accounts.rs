//! Local admin accounts: an e-mail and an argon2id password.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::admin::Caller;
use crate::config::BootstrapSettings;
use crate::crypto::{PasswordError, PasswordHasher};
use crate::store::{self, Store, StoreError};

pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("an admin with the e-mail {0} already exists")]
    Exists(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountError {
    fn from(err: sqlx::Error) -> Self {
        AccountError::Store(err.into())
    }
}

/// An e-mail address as admins are keyed by: trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEmail(String);

impl AdminEmail {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if valid {
            Ok(Self(email))
        } else {
            Err(format!("`{}` is not an e-mail address", raw.trim()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn check_password(password: &SecretString) -> Result<(), String> {
    let chars = password.expose_secret().chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at most {MAX_PASSWORD_CHARS} characters"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub id: String,
    pub email: String,
    pub created_at: i64,
}

impl Admin {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// How the audit log names this admin.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.email)
    }
}

/// Creates an admin, audited in the same transaction.
pub async fn create(
    store: &Store,
    hasher: &PasswordHasher,
    email: &AdminEmail,
    password: SecretString,
    caller: &Caller,
) -> Result<Admin, AccountError> {
    check_password(&password).map_err(AccountError::Invalid)?;
    let hash = hasher.hash(password).await?;
    let admin = Admin {
        id: format!("adm_{}", uuid::Uuid::new_v4().simple()),
        email: email.as_str().to_owned(),
        created_at: store::now(),
    };
    let mut tx = store.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO admins (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(&admin.id)
    .bind(&admin.email)
    .bind(&hash)
    .bind(admin.created_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(AccountError::Exists(admin.email));
    }
    let target = format!("admin:{}", admin.id);
    let details = json!({ "email": admin.email });
    crate::audit::commit_with(tx, caller, "admin.created", &target, details).await?;
    Ok(admin)
}

/// Whether any admin account exists (a fresh instance has none until one is created).
pub async fn any_exists(store: &Store) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM admins LIMIT 1")
        .fetch_optional(store.pool())
        .await?;
    Ok(found.is_some())
}

/// Creates the admin named by `PORTICO_BOOTSTRAP_ADMIN_*` when there is no admin yet.
pub async fn bootstrap(
    store: &Store,
    hasher: &PasswordHasher,
    settings: &BootstrapSettings,
) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) else {
        return Ok(());
    };
    if any_exists(store).await? {
        return Ok(());
    }
    let email =
        AdminEmail::parse(email).map_err(|e| anyhow::anyhow!("bootstrap.admin_email: {e}"))?;
    check_password(password).map_err(|e| anyhow::anyhow!("bootstrap.admin_password: {e}"))?;
    let caller = Caller {
        actor: "bootstrap".into(),
        ip: None,
    };
    match create(store, hasher, &email, password.clone(), &caller).await {
        // Another instance starting at the same time made it first.
        Ok(_) | Err(AccountError::Exists(_)) => {}
        Err(e) => return Err(anyhow::anyhow!("bootstrap admin: {e}")),
    }
    tracing::info!(email = %email.as_str(), "created the bootstrap admin");
    Ok(())
}

/// The admin `id`.
pub async fn find(store: &Store, id: &str) -> Result<Option<Admin>, StoreError> {
    let row = sqlx::query("SELECT id, email, created_at FROM admins WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.as_ref().map(Admin::from_row).transpose()?)
}

/// The admin and its password hash, for sign-in.
pub async fn find_for_sign_in(
    store: &Store,
    email: &AdminEmail,
) -> Result<Option<(Admin, String)>, StoreError> {
    let row =
        sqlx::query("SELECT id, email, password_hash, created_at FROM admins WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(store.pool())
            .await?;
    let found = row
        .map(|row| Ok::<_, sqlx::Error>((Admin::from_row(&row)?, row.try_get("password_hash")?)));
    Ok(found.transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            AdminEmail::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(AdminEmail::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password(&SecretString::from("short")).is_err());
        assert!(check_password(&SecretString::from("long enough pass")).is_ok());
    }
}
