//! Provider changes made by the admin UI and API. Each runs on the connection of the caller's
//! transaction, so the change commits together with its audit entry (and its events) or not
//! at all.

use secrecy::{ExposeSecret, SecretString};
use sqlx::AnyConnection;

use super::{COLUMNS, Provider, provider_from_row};
use crate::crypto::{SealTarget, Sealer};
use crate::store::{self, StoreError};
use crate::upstream::{ProviderId, ProviderKind};

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("there is no provider `{0}`")]
    NotFound(String),
    #[error("the provider id `{0}` is taken")]
    Exists(String),
    #[error("provider `{0}` is managed by the configuration file; change it there")]
    ManagedByConfig(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ProviderError {
    fn from(e: sqlx::Error) -> Self {
        ProviderError::Store(e.into())
    }
}

/// What becomes of the stored client secret.
#[derive(Debug)]
pub enum SecretChange {
    Keep,
    Set(SecretString),
    Clear,
}

/// A provider row as an admin writes it, already validated (`options::check`).
#[derive(Debug)]
pub struct ProviderWrite {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub display_name: String,
    pub enabled: bool,
    pub client_id: String,
    pub secret: SecretChange,
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    pub settings: serde_json::Value,
    pub email_domains: Vec<String>,
    pub trust_email: bool,
}

/// The provider `id`, read inside the transaction.
pub async fn fetch_in(conn: &mut AnyConnection, id: &str) -> Result<Provider, ProviderError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM providers WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref()
        .map(provider_from_row)
        .transpose()?
        .flatten()
        .ok_or_else(|| ProviderError::NotFound(id.to_owned()))
}

/// A provider the admin may change: it exists and is not managed by the configuration.
async fn editable(conn: &mut AnyConnection, id: &str) -> Result<Provider, ProviderError> {
    let provider = fetch_in(conn, id).await?;
    if provider.managed_by_config {
        return Err(ProviderError::ManagedByConfig(id.to_owned()));
    }
    Ok(provider)
}

fn seal(sealer: &Sealer, id: &ProviderId, secret: &SecretString) -> Vec<u8> {
    sealer.seal_str(
        secret.expose_secret(),
        SealTarget::new("providers", "client_secret", id.as_str()),
    )
}

pub async fn create_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    new: &ProviderWrite,
) -> Result<Provider, ProviderError> {
    let secret = match &new.secret {
        SecretChange::Set(s) => Some(seal(sealer, &new.id, s)),
        SecretChange::Keep | SecretChange::Clear => None,
    };
    let now = store::now();
    let inserted = sqlx::query(
        "INSERT INTO providers (id, kind, display_name, enabled, client_id, client_secret, \
         issuer, scopes, settings, email_domains, trust_email, managed_by_config, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $12) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(new.id.as_str())
    .bind(new.kind.as_str())
    .bind(&new.display_name)
    .bind(i64::from(new.enabled))
    .bind(&new.client_id)
    .bind(secret)
    .bind(&new.issuer)
    .bind(new.scopes.join(" "))
    .bind(new.settings.to_string())
    .bind(new.email_domains.join(" "))
    .bind(i64::from(new.trust_email))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ProviderError::Exists(new.id.to_string()));
    }
    fetch_in(conn, new.id.as_str()).await
}

/// `updated_at` always moves forward, even twice in one second: connector caches (of every
/// instance) rebuild when it changes.
const BUMP: &str = "updated_at = CASE WHEN $1 > updated_at THEN $1 ELSE updated_at + 1 END";

/// Replaces everything but the id and kind (fixed once created) and, unless it is set or
/// cleared, the sealed secret.
pub async fn update_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    new: &ProviderWrite,
) -> Result<Provider, ProviderError> {
    editable(conn, new.id.as_str()).await?;
    let secret_sql = match new.secret {
        SecretChange::Keep => "",
        SecretChange::Set(_) | SecretChange::Clear => ", client_secret = $11",
    };
    let sql = format!(
        "UPDATE providers SET {BUMP}, display_name = $2, enabled = $3, client_id = $4, \
         issuer = $5, scopes = $6, settings = $7, email_domains = $8, trust_email = $9 \
         {secret_sql} WHERE id = $10"
    );
    let mut query = sqlx::query(&sql)
        .bind(store::now())
        .bind(&new.display_name)
        .bind(i64::from(new.enabled))
        .bind(&new.client_id)
        .bind(&new.issuer)
        .bind(new.scopes.join(" "))
        .bind(new.settings.to_string())
        .bind(new.email_domains.join(" "))
        .bind(i64::from(new.trust_email))
        .bind(new.id.as_str());
    match &new.secret {
        SecretChange::Keep => {}
        SecretChange::Set(s) => query = query.bind(Some(seal(sealer, &new.id, s))),
        SecretChange::Clear => query = query.bind(None::<Vec<u8>>),
    }
    query.execute(&mut *conn).await?;
    fetch_in(conn, new.id.as_str()).await
}

pub async fn set_enabled_in(
    conn: &mut AnyConnection,
    id: &str,
    enabled: bool,
) -> Result<Provider, ProviderError> {
    editable(conn, id).await?;
    sqlx::query(&format!(
        "UPDATE providers SET {BUMP}, enabled = $2 WHERE id = $3"
    ))
    .bind(store::now())
    .bind(i64::from(enabled))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    fetch_in(conn, id).await
}

/// Deletes the provider row (its cascade is composed by the caller: see
/// `admin::providers_admin::delete`).
pub async fn delete_in(conn: &mut AnyConnection, id: &str) -> Result<Provider, ProviderError> {
    let provider = editable(conn, id).await?;
    sqlx::query("DELETE FROM providers WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(provider)
}
