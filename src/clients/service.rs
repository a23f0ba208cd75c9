//! Creating, reading and updating clients. The admin UI and API call these; `[[clients]]`
//! from portico.toml goes through `upsert_from_config` at start.
//!
//! Client secrets are high-entropy random tokens, so the database keeps their SHA-256 digest
//! (crypto::TokenDigest), never argon2: the token endpoint checks them on every request.

use secrecy::ExposeSecret;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Client, ClientId, ClientType, DEFAULT_SCOPES, GrantType, RedirectUri, ResourceUri};
use super::{ClientConfig, Lifetimes};
use crate::crypto::TokenDigest;
use crate::keys::SigningAlg;
use crate::store::{self, Store, StoreError};
use crate::upstream::ProviderId;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("client `{0}` already exists")]
    Exists(String),
    #[error("no client `{0}`")]
    NotFound(String),
    #[error("client `{0}` is managed by the configuration file")]
    ManagedByConfig(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ClientError {
    fn from(e: sqlx::Error) -> Self {
        ClientError::Store(StoreError::Database(e))
    }
}

/// A validated client definition, before it is stored.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub allowed_providers: Vec<ProviderId>,
    pub allowed_resources: Vec<ResourceUri>,
    pub id_token_alg: SigningAlg,
    /// `None`: the `[oidc]` defaults.
    pub access_token_ttl: Option<u64>,
    pub id_token_ttl: Option<u64>,
    pub refresh_token_ttl: Option<u64>,
}

impl NewClient {
    pub fn from_config(c: &ClientConfig) -> Result<Self, String> {
        let client_type = ClientType::parse(&c.client_type)?;
        let grant_types = match &c.grant_types {
            Some(list) => list
                .iter()
                .map(|g| GrantType::parse(g).ok_or_else(|| format!("unknown grant type `{g}`")))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        };
        let new = Self {
            client_id: ClientId::parse(&c.client_id)?,
            name: c.name.clone().unwrap_or_else(|| c.client_id.clone()),
            client_type,
            redirect_uris: parse_uris(&c.redirect_uris)?,
            post_logout_redirect_uris: parse_uris(&c.post_logout_redirect_uris)?,
            grant_types,
            scopes: c
                .scopes
                .clone()
                .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()),
            allowed_providers: c
                .allowed_providers
                .iter()
                .map(|p| ProviderId::parse(p))
                .collect::<Result<_, _>>()?,
            allowed_resources: parse_resources(&c.allowed_resources)?,
            id_token_alg: match &c.id_token_signed_response_alg {
                None => SigningAlg::RS256,
                Some(a) => SigningAlg::parse(a).ok_or_else(|| {
                    format!("id_token_signed_response_alg `{a}` must be RS256, ES256 or EdDSA")
                })?,
            },
            access_token_ttl: c.access_token_ttl_secs,
            id_token_ttl: c.id_token_ttl_secs,
            refresh_token_ttl: c.refresh_token_ttl_secs,
        };
        new.validate()?;
        match (client_type, &c.client_secret) {
            (ClientType::Public, Some(_)) => {
                return Err("a public client has no client_secret".into());
            }
            (ClientType::Confidential, Some(s)) if s.expose_secret().len() < 32 => {
                return Err("client_secret must be at least 32 characters".into());
            }
            _ => {}
        }
        Ok(new)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.grant_types.is_empty() {
            return Err("at least one grant type is needed".into());
        }
        if self.allows(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err("authorization_code needs at least one redirect URI".into());
        }
        if self.client_type == ClientType::Public && self.allows(GrantType::ClientCredentials) {
            return Err("a public client cannot use client_credentials".into());
        }
        if let Some(bad) = self.scopes.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(format!("scope `{bad}` is not a valid scope token"));
        }
        for ttl in [
            self.access_token_ttl,
            self.id_token_ttl,
            self.refresh_token_ttl,
        ]
        .into_iter()
        .flatten()
        {
            if ttl == 0 {
                return Err("token lifetimes must be at least 1 second".into());
            }
        }
        Ok(())
    }

    fn allows(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
}

fn parse_uris(raw: &[String]) -> Result<Vec<RedirectUri>, String> {
    raw.iter().map(|u| RedirectUri::parse(u)).collect()
}

/// Resource indicators, each parsed; a repeated one is refused.
pub fn parse_resources(raw: &[String]) -> Result<Vec<ResourceUri>, String> {
    let mut out: Vec<ResourceUri> = Vec::with_capacity(raw.len());
    for r in raw {
        let parsed = ResourceUri::parse(r)?;
        if out.contains(&parsed) {
            return Err(format!("resource `{r}` is listed twice"));
        }
        out.push(parsed);
    }
    Ok(out)
}

pub(super) fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("a list serialises")
}

fn from_json_list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

pub(super) const COLUMNS: &str = "client_id, name, client_type, secret_digest, redirect_uris, \
     post_logout_redirect_uris, grant_types, scopes, allowed_providers, allowed_resources, \
     id_token_alg, access_token_ttl, id_token_ttl, refresh_token_ttl, managed_by_config, \
     created_at";

pub(super) fn client_from_row(row: &AnyRow) -> Result<Client, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("client {what}"));
    let digest: Option<Vec<u8>> = row.try_get("secret_digest")?;
    Ok(Client {
        client_id: ClientId::parse(&row.try_get::<String, _>("client_id")?)
            .map_err(|_| corrupt("id"))?,
        name: row.try_get("name")?,
        client_type: ClientType::parse(&row.try_get::<String, _>("client_type")?)
            .map_err(|_| corrupt("type"))?,
        secret_digest: digest.as_deref().and_then(TokenDigest::from_slice),
        redirect_uris: from_json_list(&row.try_get::<String, _>("redirect_uris")?)
            .iter()
            .filter_map(|u| RedirectUri::parse(u).ok())
            .collect(),
        post_logout_redirect_uris: from_json_list(
            &row.try_get::<String, _>("post_logout_redirect_uris")?,
        )
        .iter()
        .filter_map(|u| RedirectUri::parse(u).ok())
        .collect(),
        grant_types: from_json_list(&row.try_get::<String, _>("grant_types")?)
            .iter()
            .filter_map(|g| GrantType::parse(g))
            .collect(),
        scopes: from_json_list(&row.try_get::<String, _>("scopes")?),
        allowed_providers: from_json_list(&row.try_get::<String, _>("allowed_providers")?)
            .iter()
            .filter_map(|p| ProviderId::parse(p).ok())
            .collect(),
        allowed_resources: from_json_list(&row.try_get::<String, _>("allowed_resources")?)
            .iter()
            .filter_map(|r| ResourceUri::parse(r).ok())
            .collect(),
        id_token_alg: SigningAlg::parse(&row.try_get::<String, _>("id_token_alg")?)
            .ok_or_else(|| corrupt("algorithm"))?,
        access_token_ttl: row.try_get("access_token_ttl")?,
        id_token_ttl: row.try_get("id_token_ttl")?,
        refresh_token_ttl: row.try_get("refresh_token_ttl")?,
        managed_by_config: row.try_get::<i64, _>("managed_by_config")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM clients ORDER BY client_id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Inserts or replaces the clients of `[[clients]]`, marked managed by config.
    pub async fn upsert_config_clients(
        &self,
        clients: &[ClientConfig],
        defaults: &Lifetimes,
    ) -> Result<(), ClientError> {
        for c in clients {
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
            let mut conn = self.pool().acquire().await?;
            write_client(&mut conn, &new, digest, true, defaults, true).await?;
        }
        Ok(())
    }
}

/// Inserts (or with `replace`, upserts) a client row on `conn` (a transaction's connection
/// when the change must commit with its audit entry); false when it existed and was kept.
pub(super) async fn write_client(
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
             managed_by_config = excluded.managed_by_config, updated_at = excluded.updated_at"
    } else {
        "ON CONFLICT (client_id) DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO clients (client_id, name, client_type, secret_digest, redirect_uris, \
             post_logout_redirect_uris, grant_types, scopes, allowed_providers, \
             allowed_resources, id_token_alg, access_token_ttl, id_token_ttl, refresh_token_ttl, \
             managed_by_config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $16) {conflict}"
    );
    let grants: Vec<&str> = new.grant_types.iter().map(|g| g.as_str()).collect();
    let result = sqlx::query(&sql)
        .bind(new.client_id.as_str())
        .bind(&new.name)
        .bind(new.client_type.as_str())
        .bind(digest.map(|d| d.as_bytes().to_vec()))
        .bind(json_list(&new.redirect_uris))
        .bind(json_list(&new.post_logout_redirect_uris))
        .bind(json_list(&grants))
        .bind(json_list(&new.scopes))
        .bind(json_list(&new.allowed_providers))
        .bind(json_list(&new.allowed_resources))
        .bind(new.id_token_alg.as_str())
        .bind(new.access_token_ttl.unwrap_or(defaults.access_token_secs) as i64)
        .bind(new.id_token_ttl.unwrap_or(defaults.id_token_secs) as i64)
        .bind(new.refresh_token_ttl.unwrap_or(defaults.refresh_token_secs) as i64)
        .bind(i64::from(managed))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected() > 0)
}
