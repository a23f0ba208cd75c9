//! The `providers` table: the only place its SQL lives. The admin services change providers
//! on their transaction (`*_in`), so a change commits with its audit entry or not at all;
//! `[[providers]]` from portico.toml go through `upsert_config_in` at start (`declared`). The client secret and
//! the secret a kind keeps beside the row (a SAML provider's SP key) are sealed to their row.

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Provider, ProviderConfig, setup};
use crate::crypto::Sealer;
use crate::store::sealed;
use crate::store::{self, Store, StoreError, flag, json_list};
use crate::upstream::{ProviderId, ProviderKind};

const COLUMNS: &str = "id, kind, display_name, enabled, client_id, client_secret, issuer, \
                       scopes, incremental_scopes, settings, email_domains, trust_email, managed_by_config, created_at, \
                       updated_at, saml_sp_key";

fn provider_from_row(row: &AnyRow) -> Result<Option<Provider>, StoreError> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    // A row of a kind this build has no connector for is skipped, never served.
    let Some(kind) = ProviderKind::parse(&kind) else {
        return Ok(None);
    };
    let settings: String = row.try_get("settings")?;
    Ok(Some(Provider {
        id: ProviderId::parse(&id).map_err(StoreError::Corrupt)?,
        kind,
        display_name: row.try_get("display_name")?,
        enabled: flag(row, "enabled")?,
        client_id: row.try_get("client_id")?,
        sealed_secret: row.try_get("client_secret")?,
        issuer: row.try_get("issuer")?,
        scopes: json_list(row, "scopes")?,
        incremental_scopes: json_list(row, "incremental_scopes")?,
        settings: serde_json::from_str(&settings).unwrap_or(serde_json::Value::Null),
        email_domains: json_list(row, "email_domains")?,
        trust_email: flag(row, "trust_email")?,
        managed_by_config: flag(row, "managed_by_config")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        sealed_saml_key: row.try_get("saml_sp_key")?,
    }))
}

pub async fn find(store: &Store, id: &str) -> Result<Option<Provider>, StoreError> {
    find_in(&mut *store.pool().acquire().await?, id).await
}

/// The provider `id`, on `conn` (a transaction's, or a pooled one).
pub async fn find_in(conn: &mut AnyConnection, id: &str) -> Result<Option<Provider>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM providers WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(provider_from_row).transpose()?.flatten())
}

pub async fn enabled(store: &Store) -> Result<Vec<Provider>, StoreError> {
    where_(store, "WHERE enabled = 1").await
}

/// Every provider, enabled or not (the admin lists).
pub async fn all(store: &Store) -> Result<Vec<Provider>, StoreError> {
    where_(store, "").await
}

/// [`foreign_prefixes_in`] on a pooled connection (the claims preview).
pub async fn foreign_prefixes(store: &Store, except: &str) -> Result<Vec<String>, StoreError> {
    foreign_prefixes_in(&mut *store.pool().acquire().await?, except).await
}

/// The `group_prefix` of every provider but `except`, enabled or not (a disabled provider's
/// namespace is still its apps'): the names `except` may never hand out
/// (`claims::pipeline::drop_foreign`). One query, read at every login and refresh, so a prefix
/// changed on any instance holds everywhere at once.
pub async fn foreign_prefixes_in(
    conn: &mut AnyConnection,
    except: &str,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT settings FROM providers WHERE id <> $1")
        .bind(except)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(settings,)| {
            let settings = serde_json::from_str(&settings).ok()?;
            crate::claims::ClaimRules::of_settings(&settings)?
                .prefix()
                .map(str::to_owned)
        })
        .collect())
}

/// How many providers there are, enabled or not (the dashboard's setup checklist).
pub async fn count(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM providers")
        .fetch_one(store.pool())
        .await?)
}

/// Up to `limit` providers newest first, below `before` (the admin API's pages).
pub async fn page(
    store: &Store,
    before: Option<&store::Keyset>,
    limit: i64,
) -> Result<Vec<Provider>, StoreError> {
    let select = format!("SELECT {COLUMNS} FROM providers");
    let list = store::NewestFirst::by_created(&select, "id");
    known(list.fetch(store.pool(), before, limit).await?)
}

/// The rows of kinds this build knows.
fn known(rows: Vec<AnyRow>) -> Result<Vec<Provider>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(p) = provider_from_row(row)? {
            out.push(p);
        }
    }
    Ok(out)
}

async fn where_(store: &Store, filter: &str) -> Result<Vec<Provider>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM providers {filter} ORDER BY display_name, id"
    ))
    .fetch_all(store.pool())
    .await?;
    known(rows)
}

/// Inserts or replaces a provider of `[[providers]]`, marked managed by config, with the
/// secret its kind keeps beside the row (a saml provider's SP private key) sealed to it, or
/// cleared when the configuration no longer has one. A row an admin made (not managed) is never
/// replaced: `declared::plan` refuses such a clash first, and the statement's condition keeps it.
pub async fn upsert_config_in(
    conn: &mut AnyConnection,
    p: &ProviderConfig,
    sealer: &Sealer,
) -> Result<(), StoreError> {
    let setup = setup(p).map_err(StoreError::Corrupt)?;
    let write = ProviderWrite {
        id: p.id.clone(),
        kind: p.checked_kind().map_err(StoreError::Corrupt)?,
        display_name: p.display_name.clone().unwrap_or_else(|| p.id.to_string()),
        enabled: p.enabled,
        client_id: p.client_id.clone(),
        secret: p
            .client_secret
            .clone()
            .map_or(SecretChange::Clear, SecretChange::Set),
        issuer: p.issuer.clone(),
        scopes: setup.scopes,
        incremental_scopes: setup.incremental_scopes,
        settings: setup.settings,
        email_domains: p.email_domains.clone(),
        trust_email: p.trust_email,
    };
    insert(conn, sealer, &write, true).await?;
    let key = setup.key.map(|key| {
        let target = sealed::PROVIDER_SAML_KEY.target(p.id.as_str());
        sealer.seal_str(key.expose_secret(), target)
    });
    sqlx::query("UPDATE providers SET saml_sp_key = $1 WHERE id = $2 AND managed_by_config = 1")
        .bind(key)
        .bind(p.id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ids of the providers managed by config.
pub async fn managed_ids_in(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM providers WHERE managed_by_config = 1 ORDER BY id")
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Deletes a provider managed by config (one removed from portico.toml); false if there was
/// none. The caller composes the cascade.
pub async fn delete_managed_in(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM providers WHERE id = $1 AND managed_by_config = 1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Disables an enabled provider managed by config (one removed from portico.toml that users
/// are still linked to); false if there was none to disable. It stays managed, so no admin
/// re-enables it by accident and declaring it again brings it back with its users.
pub async fn disable_managed_in(conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
    let changed = sqlx::query(&format!(
        "UPDATE providers SET {BUMP}, enabled = 0 \
         WHERE id = $2 AND managed_by_config = 1 AND enabled = 1"
    ))
    .bind(store::now())
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Inserts `new` (a secret only when set), unless it exists; with `managed`, as a provider of
/// `[[providers]]`, replacing the row it had. False when a row existed and was kept.
async fn insert(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    new: &ProviderWrite,
    managed: bool,
) -> Result<bool, StoreError> {
    let secret = match &new.secret {
        SecretChange::Set(s) => Some(seal(sealer, &new.id, s)),
        SecretChange::Keep | SecretChange::Clear => None,
    };
    let conflict = if managed {
        "DO UPDATE SET kind = excluded.kind, display_name = excluded.display_name, \
         enabled = excluded.enabled, client_id = excluded.client_id, \
         client_secret = excluded.client_secret, issuer = excluded.issuer, \
         scopes = excluded.scopes, incremental_scopes = excluded.incremental_scopes, \
         settings = excluded.settings, \
         email_domains = excluded.email_domains, trust_email = excluded.trust_email, \
         managed_by_config = 1, updated_at = excluded.updated_at \
         WHERE providers.managed_by_config = 1"
    } else {
        "DO NOTHING"
    };
    let inserted = sqlx::query(&format!(
        "INSERT INTO providers (id, kind, display_name, enabled, client_id, client_secret, \
         issuer, scopes, settings, email_domains, trust_email, managed_by_config, created_at, \
         updated_at, incremental_scopes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
         ON CONFLICT (id) {conflict}"
    ))
    .bind(new.id.as_str())
    .bind(new.kind.as_str())
    .bind(&new.display_name)
    .bind(i64::from(new.enabled))
    .bind(&new.client_id)
    .bind(secret)
    .bind(&new.issuer)
    .bind(store::to_json_list(&new.scopes))
    .bind(new.settings.to_string())
    .bind(store::to_json_list(&new.email_domains))
    .bind(i64::from(new.trust_email))
    .bind(i64::from(managed))
    .bind(store::now())
    .bind(store::to_json_list(&new.incremental_scopes))
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

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

/// A provider row as an admin writes it, already validated (its kind's check).
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
    pub incremental_scopes: Vec<String>,
    pub settings: serde_json::Value,
    pub email_domains: Vec<String>,
    pub trust_email: bool,
}

/// The provider `id`, read inside the transaction.
pub async fn fetch_in(conn: &mut AnyConnection, id: &str) -> Result<Provider, ProviderError> {
    find_in(conn, id)
        .await?
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
        sealed::PROVIDER_SECRET.target(id.as_str()),
    )
}

pub async fn create_in(
    conn: &mut AnyConnection,
    sealer: &Sealer,
    new: &ProviderWrite,
) -> Result<Provider, ProviderError> {
    if !insert(conn, sealer, new, false).await? {
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
        SecretChange::Set(_) | SecretChange::Clear => ", client_secret = $12",
    };
    let sql = format!(
        "UPDATE providers SET {BUMP}, display_name = $2, enabled = $3, client_id = $4, \
         issuer = $5, scopes = $6, settings = $7, email_domains = $8, trust_email = $9, \
         incremental_scopes = $11 {secret_sql} WHERE id = $10"
    );
    let mut query = sqlx::query(&sql)
        .bind(store::now())
        .bind(&new.display_name)
        .bind(i64::from(new.enabled))
        .bind(&new.client_id)
        .bind(&new.issuer)
        .bind(store::to_json_list(&new.scopes))
        .bind(new.settings.to_string())
        .bind(store::to_json_list(&new.email_domains))
        .bind(i64::from(new.trust_email))
        .bind(new.id.as_str())
        .bind(store::to_json_list(&new.incremental_scopes));
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
/// `admin::providers::service::delete`).
pub async fn delete_in(conn: &mut AnyConnection, id: &str) -> Result<Provider, ProviderError> {
    let provider = editable(conn, id).await?;
    sqlx::query("DELETE FROM providers WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(provider)
}
