//! The `clients` table: the only place its SQL lives. The admin services change clients on
//! their transaction (`*_in`), so a change commits with its audit entry or not at all;
//! `[[clients]]` from portico.toml goes through `upsert_config_in` at start (`declared`).
//!
//! Client secrets are high-entropy random tokens, so the table keeps their SHA-256 digest
//! (crypto::TokenDigest), never argon2: the token endpoint checks them on every request.

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{
    Client, ClientConfig, ClientError, ClientId, ClientType, GrantType, Lifetimes, NewClient,
    RedirectUri, ResourceUri,
};
use crate::claims::{ClaimSelection, GroupFilter};
use crate::crypto::{TokenDigest, random_token};
use crate::keys::SigningAlg;
use crate::store::{self, Store, StoreError};
use crate::upstream::ProviderId;

const COLUMNS: &str = "client_id, name, client_type, secret_digest, redirect_uris, \
     post_logout_redirect_uris, grant_types, scopes, allowed_providers, allowed_resources, \
     id_token_alg, access_token_ttl, id_token_ttl, refresh_token_ttl, managed_by_config, \
     development, claims, group_filter, created_at";

/// A list column, each entry parsed; one that no longer parses is left out.
fn parsed<T, E>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, StoreError> {
    let raw = store::json_list(row, column)?;
    Ok(raw.iter().filter_map(|v| parse(v).ok()).collect())
}

/// The claim list (NULL: none, every claim stays) and the group filter, as stored. A pattern or
/// name that no longer parses makes the row corrupt rather than the filter wider.
fn claim_rules(row: &AnyRow) -> Result<(Option<ClaimSelection>, GroupFilter), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("client {what}"));
    let claims: Option<String> = row.try_get("claims")?;
    let claims = claims
        .map(|raw| serde_json::from_str(&raw).map_err(|_| corrupt("claim list")))
        .transpose()?;
    let filter: String = row.try_get("group_filter")?;
    let filter = serde_json::from_str(&filter).map_err(|_| corrupt("group filter"))?;
    Ok((claims, filter))
}

/// The claim list and group filter as their columns hold them.
fn claim_columns(new: &NewClient) -> (Option<String>, String) {
    let claims = new.claims.as_ref().map(|c| store::to_json_list(c.names()));
    let filter = serde_json::to_string(&new.group_filter).expect("a filter serialises");
    (claims, filter)
}

fn client_from_row(row: &AnyRow) -> Result<Client, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("client {what}"));
    let digest: Option<Vec<u8>> = row.try_get("secret_digest")?;
    let (claims, group_filter) = claim_rules(row)?;
    Ok(Client {
        client_id: ClientId::parse(&row.try_get::<String, _>("client_id")?)
            .map_err(|_| corrupt("id"))?,
        name: row.try_get("name")?,
        client_type: ClientType::parse(&row.try_get::<String, _>("client_type")?)
            .map_err(|_| corrupt("type"))?,
        secret_digest: digest.as_deref().and_then(TokenDigest::from_slice),
        redirect_uris: parsed(row, "redirect_uris", RedirectUri::parse)?,
        post_logout_redirect_uris: parsed(row, "post_logout_redirect_uris", RedirectUri::parse)?,
        grant_types: parsed(row, "grant_types", |g| GrantType::parse(g).ok_or(()))?,
        scopes: store::json_list(row, "scopes")?,
        allowed_providers: parsed(row, "allowed_providers", ProviderId::parse)?,
        allowed_resources: parsed(row, "allowed_resources", ResourceUri::parse)?,
        id_token_alg: SigningAlg::parse(&row.try_get::<String, _>("id_token_alg")?)
            .ok_or_else(|| corrupt("algorithm"))?,
        access_token_ttl: row.try_get("access_token_ttl")?,
        id_token_ttl: row.try_get("id_token_ttl")?,
        refresh_token_ttl: row.try_get("refresh_token_ttl")?,
        managed_by_config: store::flag(row, "managed_by_config")?,
        development: store::flag(row, "development")?,
        claims,
        group_filter,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn find(store: &Store, client_id: &str) -> Result<Option<Client>, StoreError> {
    find_in(&mut *store.pool().acquire().await?, client_id).await
}

pub async fn find_in(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1");
    let row = sqlx::query(&sql)
        .bind(client_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(client_from_row).transpose()
}

pub async fn list(store: &Store) -> Result<Vec<Client>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM clients ORDER BY client_id"))
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(client_from_row).collect()
}

/// How many clients there are (the dashboard's setup checklist).
pub async fn count(store: &Store) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM clients")
        .fetch_one(store.pool())
        .await?)
}

/// Up to `limit` clients newest first, below `before` (the admin API's pages).
pub async fn page(
    store: &Store,
    before: Option<&store::Keyset>,
    limit: i64,
) -> Result<Vec<Client>, StoreError> {
    let select = format!("SELECT {COLUMNS} FROM clients");
    let list = store::NewestFirst::by_created(&select, "client_id");
    list.fetch(store.pool(), before, limit)
        .await?
        .iter()
        .map(client_from_row)
        .collect()
}

/// The definition of a `[[clients]]` entry and the digest of its secret, checked as the start
/// checks it (a confidential client in the file needs its secret there).
pub fn declared(c: &ClientConfig) -> Result<(NewClient, Option<TokenDigest>), ClientError> {
    let new = NewClient::from_config(c)
        .map_err(|e| ClientError::Invalid(format!("client `{}`: {e}", c.client_id)))?;
    let digest = c
        .client_secret
        .as_ref()
        .map(|s| TokenDigest::of(s.expose_secret()));
    if new.client_type == ClientType::Confidential && digest.is_none() {
        return Err(ClientError::Invalid(format!(
            "client `{}`: a confidential client in the configuration needs client_secret",
            c.client_id
        )));
    }
    Ok((new, digest))
}

/// Inserts or replaces a client of `[[clients]]`, marked managed by config, on the start's
/// transaction. A row an admin made (not managed) is never replaced: `declared::plan` refuses
/// such a clash before this runs, and the statement's own condition keeps it anyway.
pub async fn upsert_config_in(
    conn: &mut AnyConnection,
    c: &ClientConfig,
    defaults: &Lifetimes,
) -> Result<(), ClientError> {
    let (new, digest) = declared(c)?;
    write_client(conn, &new, digest, true, defaults, true).await?;
    Ok(())
}

/// Ids of the clients managed by config.
pub async fn managed_ids_in(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT client_id FROM clients WHERE managed_by_config = 1 ORDER BY client_id",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Deletes a client managed by config (one removed from portico.toml); false if there was
/// none. The caller revokes what was issued to it, as for an admin's delete.
pub async fn delete_managed_in(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<bool, ClientError> {
    let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1 AND managed_by_config = 1")
        .bind(client_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// Inserts (or with `replace`, upserts) a client row on `conn` (a transaction's connection
/// when the change must commit with its audit entry); false when it existed and was kept.
async fn write_client(
    conn: &mut AnyConnection,
    new: &NewClient,
    digest: Option<TokenDigest>,
    managed: bool,
    defaults: &Lifetimes,
    replace: bool,
) -> Result<bool, ClientError> {
    let now = store::now();
    let conflict = if replace {
        "ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, \
             client_type = excluded.client_type, secret_digest = excluded.secret_digest, \
             redirect_uris = excluded.redirect_uris, \
             post_logout_redirect_uris = excluded.post_logout_redirect_uris, \
             grant_types = excluded.grant_types, scopes = excluded.scopes, \
             allowed_providers = excluded.allowed_providers, \
             allowed_resources = excluded.allowed_resources, id_token_alg = excluded.id_token_alg, \
             access_token_ttl = excluded.access_token_ttl, id_token_ttl = excluded.id_token_ttl, \
             refresh_token_ttl = excluded.refresh_token_ttl, \
             managed_by_config = excluded.managed_by_config, \
             development = excluded.development, claims = excluded.claims, \
             group_filter = excluded.group_filter, updated_at = excluded.updated_at \
             WHERE clients.managed_by_config = 1"
    } else {
        "ON CONFLICT (client_id) DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO clients (client_id, name, client_type, secret_digest, redirect_uris, \
             post_logout_redirect_uris, grant_types, scopes, allowed_providers, \
             allowed_resources, id_token_alg, access_token_ttl, id_token_ttl, refresh_token_ttl, \
             managed_by_config, development, claims, group_filter, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $19) {conflict}"
    );
    let grants: Vec<&str> = new.grant_types.iter().map(|g| g.as_str()).collect();
    let (claims, group_filter) = claim_columns(new);
    let result = sqlx::query(&sql)
        .bind(new.client_id.as_str())
        .bind(&new.name)
        .bind(new.client_type.as_str())
        .bind(digest.map(|d| d.as_bytes().to_vec()))
        .bind(store::to_json_list(&new.redirect_uris))
        .bind(store::to_json_list(&new.post_logout_redirect_uris))
        .bind(store::to_json_list(&grants))
        .bind(store::to_json_list(&new.scopes))
        .bind(store::to_json_list(&new.allowed_providers))
        .bind(store::to_json_list(&new.allowed_resources))
        .bind(new.id_token_alg.as_str())
        .bind(new.access_token_ttl.unwrap_or(defaults.access_token_secs) as i64)
        .bind(new.id_token_ttl.unwrap_or(defaults.id_token_secs) as i64)
        .bind(new.refresh_token_ttl.unwrap_or(defaults.refresh_token_secs) as i64)
        .bind(i64::from(managed))
        .bind(i64::from(new.development))
        .bind(claims)
        .bind(group_filter)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// The client `client_id`, read inside the transaction.
pub async fn fetch_in(conn: &mut AnyConnection, client_id: &str) -> Result<Client, ClientError> {
    find_in(conn, client_id)
        .await?
        .ok_or_else(|| ClientError::NotFound(client_id.to_owned()))
}

/// A client that the admin may change: it exists and is not managed by the configuration.
async fn editable(conn: &mut AnyConnection, client_id: &str) -> Result<Client, ClientError> {
    let client = fetch_in(conn, client_id).await?;
    if client.managed_by_config {
        return Err(ClientError::ManagedByConfig(client_id.to_owned()));
    }
    Ok(client)
}

/// Creates a client; a confidential one gets a new secret, returned here only.
pub async fn create_in(
    conn: &mut AnyConnection,
    new: &NewClient,
    defaults: &Lifetimes,
) -> Result<(Client, Option<SecretString>), ClientError> {
    new.validate().map_err(ClientError::Invalid)?;
    let secret = (new.client_type == ClientType::Confidential).then(|| random_token("cs_"));
    let digest = secret.as_ref().map(|s| TokenDigest::of(s.expose_secret()));
    if !write_client(conn, new, digest, false, defaults, false).await? {
        return Err(ClientError::Exists(new.client_id.to_string()));
    }
    Ok((fetch_in(conn, new.client_id.as_str()).await?, secret))
}

/// Replaces what an admin may edit: name, URIs, grants, scopes, allowed providers and
/// resources, the development flag, the claim list and the group filter. The type and the
/// secret stay (a type change would leave a secret behind or ask for one).
pub async fn update_in(conn: &mut AnyConnection, new: &NewClient) -> Result<Client, ClientError> {
    let current = editable(conn, new.client_id.as_str()).await?;
    if current.client_type != new.client_type {
        return Err(ClientError::Invalid(
            "a client's type cannot change; create a new client".into(),
        ));
    }
    new.validate().map_err(ClientError::Invalid)?;
    let grants: Vec<&str> = new.grant_types.iter().map(|g| g.as_str()).collect();
    let (claims, group_filter) = claim_columns(new);
    sqlx::query(
        "UPDATE clients SET name = $1, redirect_uris = $2, post_logout_redirect_uris = $3, \
         grant_types = $4, scopes = $5, allowed_providers = $6, allowed_resources = $7, \
         development = $8, claims = $9, group_filter = $10, updated_at = $11 \
         WHERE client_id = $12",
    )
    .bind(&new.name)
    .bind(store::to_json_list(&new.redirect_uris))
    .bind(store::to_json_list(&new.post_logout_redirect_uris))
    .bind(store::to_json_list(&grants))
    .bind(store::to_json_list(&new.scopes))
    .bind(store::to_json_list(&new.allowed_providers))
    .bind(store::to_json_list(&new.allowed_resources))
    .bind(i64::from(new.development))
    .bind(claims)
    .bind(group_filter)
    .bind(store::now())
    .bind(new.client_id.as_str())
    .execute(&mut *conn)
    .await?;
    fetch_in(conn, new.client_id.as_str()).await
}

/// Replaces a confidential client's secret; the new one is returned here only.
pub async fn rotate_secret_in(
    conn: &mut AnyConnection,
    client_id: &str,
) -> Result<SecretString, ClientError> {
    let client = editable(conn, client_id).await?;
    if client.is_public() {
        return Err(ClientError::Invalid("a public client has no secret".into()));
    }
    let secret = random_token("cs_");
    sqlx::query("UPDATE clients SET secret_digest = $1, updated_at = $2 WHERE client_id = $3")
        .bind(TokenDigest::of(secret.expose_secret()).as_bytes().to_vec())
        .bind(store::now())
        .bind(client_id)
        .execute(&mut *conn)
        .await?;
    Ok(secret)
}

/// Deletes a client (the caller revokes what was issued to it: `admin::clients_admin::delete`).
pub async fn delete_in(conn: &mut AnyConnection, client_id: &str) -> Result<Client, ClientError> {
    let client = editable(conn, client_id).await?;
    sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *conn)
        .await?;
    Ok(client)
}
