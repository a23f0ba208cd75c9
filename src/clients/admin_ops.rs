//! Client changes made by the admin UI and API. Each runs on the connection of the caller's
//! transaction, so the change commits together with its audit entry or not at all.

use secrecy::{ExposeSecret, SecretString};
use sqlx::AnyConnection;

use super::Lifetimes;
use super::service::{COLUMNS, client_from_row, json_list, write_client};
use super::{Client, ClientError, ClientType, NewClient};
use crate::crypto::{TokenDigest, random_token};
use crate::store;

/// The client `client_id`, read inside the transaction.
pub async fn fetch_in(conn: &mut AnyConnection, client_id: &str) -> Result<Client, ClientError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
    ))
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(client_from_row(&row)?),
        None => Err(ClientError::NotFound(client_id.to_owned())),
    }
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

/// Replaces what an admin may edit: name, URIs, grants, scopes, allowed providers and resources. The type
/// and the secret stay (a type change would leave a secret behind or ask for one).
pub async fn update_in(conn: &mut AnyConnection, new: &NewClient) -> Result<Client, ClientError> {
    let current = editable(conn, new.client_id.as_str()).await?;
    if current.client_type != new.client_type {
        return Err(ClientError::Invalid(
            "a client's type cannot change; create a new client".into(),
        ));
    }
    new.validate().map_err(ClientError::Invalid)?;
    let grants: Vec<&str> = new.grant_types.iter().map(|g| g.as_str()).collect();
    sqlx::query(
        "UPDATE clients SET name = $1, redirect_uris = $2, post_logout_redirect_uris = $3, \
         grant_types = $4, scopes = $5, allowed_providers = $6, allowed_resources = $7, \
         updated_at = $8 WHERE client_id = $9",
    )
    .bind(&new.name)
    .bind(json_list(&new.redirect_uris))
    .bind(json_list(&new.post_logout_redirect_uris))
    .bind(json_list(&grants))
    .bind(json_list(&new.scopes))
    .bind(json_list(&new.allowed_providers))
    .bind(json_list(&new.allowed_resources))
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
