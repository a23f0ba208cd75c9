//! What a client is before it is stored: a validated definition (`NewClient`), from the admin
//! API or from `[[clients]]`, and the errors of changing clients.

use secrecy::ExposeSecret;

use crate::store::StoreError;

use super::{
    ClientConfig, ClientId, ClientType, DEFAULT_SCOPES, GrantType, RedirectError, RedirectUri,
    ResourceUri,
};
use crate::claims::{ClaimSelection, GroupFilter};
use crate::keys::SigningAlg;
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
    /// May register http://localhost redirect URIs.
    pub development: bool,
    /// `None`: every user claim its scopes give.
    pub claims: Option<ClaimSelection>,
    pub group_filter: GroupFilter,
}

impl NewClient {
    /// The definition of a stored client, to change part of it and store it again.
    pub fn of(client: &super::Client) -> Self {
        let secs = |ttl: i64| Some(u64::try_from(ttl).unwrap_or(1));
        Self {
            client_id: client.client_id.clone(),
            name: client.name.clone(),
            client_type: client.client_type,
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.clone(),
            allowed_providers: client.allowed_providers.clone(),
            allowed_resources: client.allowed_resources.clone(),
            id_token_alg: client.id_token_alg,
            access_token_ttl: secs(client.access_token_ttl),
            id_token_ttl: secs(client.id_token_ttl),
            refresh_token_ttl: secs(client.refresh_token_ttl),
            development: client.development,
            claims: client.claims.clone(),
            group_filter: client.group_filter.clone(),
        }
    }

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
            redirect_uris: parse_uris(&c.redirect_uris, c.development)?,
            post_logout_redirect_uris: parse_uris(&c.post_logout_redirect_uris, c.development)?,
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
            development: c.development,
            claims: c
                .claims
                .as_deref()
                .map(ClaimSelection::parse)
                .transpose()
                .map_err(|e| format!("claims: {e}"))?,
            group_filter: c
                .group_filter
                .parse()
                .map_err(|e| format!("group_filter: {e}"))?,
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

    /// The first rule this definition breaks, if any (portico.toml names one per start).
    pub fn validate(&self) -> Result<(), String> {
        if let Some((_, problem)) = self.problems().into_iter().next() {
            return Err(problem);
        }
        let ttls = [
            self.access_token_ttl,
            self.id_token_ttl,
            self.refresh_token_ttl,
        ];
        if ttls.into_iter().flatten().any(|ttl| ttl == 0) {
            return Err("token lifetimes must be at least 1 second".into());
        }
        Ok(())
    }

    /// The rules across fields it breaks, each with the field it is about.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        Rules {
            client_type: Some(self.client_type),
            grant_types: &self.grant_types,
            redirect_uris: &self.redirect_uris,
            post_logout_redirect_uris: &self.post_logout_redirect_uris,
            scopes: &self.scopes,
            development: self.development,
        }
        .problems()
    }
}

/// What the rules across a client's fields look at; `client_type` is `None` when it did not
/// parse (the rules that need it are skipped, so every other error still shows).
pub struct Rules<'a> {
    pub client_type: Option<ClientType>,
    pub grant_types: &'a [GrantType],
    pub redirect_uris: &'a [RedirectUri],
    pub post_logout_redirect_uris: &'a [RedirectUri],
    pub scopes: &'a [String],
    pub development: bool,
}

impl Rules<'_> {
    /// Every rule broken, in plain words, each with its field (the admin API's field names).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let uris = [
            ("redirect_uris", self.redirect_uris),
            ("post_logout_redirect_uris", self.post_logout_redirect_uris),
        ];
        for (field, list) in uris {
            if let Some(dev) = list
                .iter()
                .find(|u| !self.development && u.is_development())
            {
                let e = RedirectError::LocalhostNeedsDevelopment(dev.as_str().to_owned());
                out.push((field, e.to_string()));
            }
        }
        let allows = |g| self.grant_types.contains(&g);
        if self.grant_types.is_empty() {
            out.push((
                "grant_types",
                "Choose at least one grant type: authorization_code for an application that \
                 signs users in, client_credentials for a service that calls an API as itself"
                    .to_owned(),
            ));
        }
        if allows(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            out.push((
                "redirect_uris",
                "Enter at least one redirect URI: with authorization_code, Portico sends users \
                 back to the application there after they sign in"
                    .to_owned(),
            ));
        }
        if self.client_type == Some(ClientType::Public) && allows(GrantType::ClientCredentials) {
            out.push((
                "grant_types",
                "A public client cannot use client_credentials (it has no secret to prove who it \
                 is): untick client_credentials, or make the client confidential"
                    .to_owned(),
            ));
        }
        if let Some(bad) = self.scopes.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            out.push((
                "scopes",
                format!(
                    "“{bad}” is not a valid scope: scopes are words separated by spaces, \
                     without quotes or backslashes"
                ),
            ));
        }
        out
    }
}

fn parse_uris(raw: &[String], development: bool) -> Result<Vec<RedirectUri>, String> {
    raw.iter()
        .map(|u| RedirectUri::register(u, development).map_err(|e| e.to_string()))
        .collect()
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
