//! The provider registry: the `providers` table, `[[providers]]` from portico.toml, and the
//! connectors built from them.
//!
//! Connectors are cached per provider and rebuilt when the row's `updated_at` changes, so a
//! connector's discovery and JWKS cache survives between requests; nothing in the cache is
//! needed by another instance (it is rebuilt from the database on a miss).

mod config;
pub mod options;
pub mod repo;
mod saml;

pub use config::{ProviderConfig, supported_kind, validate_config};
pub use saml::spawn_metadata_refresh;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use secrecy::SecretString;

use crate::crypto::Sealer;
use crate::store::StoreError;
use crate::upstream::github::{GithubConfig, GithubConnector};
use crate::upstream::google::{GoogleConfig, GoogleConnector, GoogleOptions};
use crate::upstream::http::UpstreamHttp;
use crate::upstream::oidc::{ClaimMapping, OidcConfig, OidcConnector};
use crate::upstream::{Connector, ProviderId, ProviderKind};

/// A provider row, secret still sealed.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub display_name: String,
    pub enabled: bool,
    pub client_id: String,
    sealed_secret: Option<Vec<u8>>,
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    /// Kind-specific options (for oidc: `{"claims": ClaimMapping}`).
    pub settings: serde_json::Value,
    pub email_domains: Vec<String>,
    pub trust_email: bool,
    pub managed_by_config: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// kind saml: the SP private key (PEM), sealed.
    sealed_saml_key: Option<Vec<u8>>,
}

impl Provider {
    pub fn has_secret(&self) -> bool {
        self.sealed_secret.is_some()
    }

    /// Whether `email`'s domain is one of this provider's home-realm domains.
    pub fn serves_email(&self, email: &str) -> bool {
        email.rsplit_once('@').is_some_and(|(_, domain)| {
            self.email_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
        })
    }
}

/// Whether a provider's verified addresses count as verified in Portico: it is trusted for
/// e-mail and, for SAML, the admin said its IdP verifies addresses (`saml.email_verified`).
pub fn vouches_for_email(
    kind: ProviderKind,
    trust_email: bool,
    settings: &serde_json::Value,
) -> bool {
    trust_email
        && (kind != ProviderKind::Saml
            || settings
                .pointer("/saml/email_verified")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false))
}

/// A built connector and the `updated_at` of the row it was built from.
type CachedConnector = (i64, Arc<dyn Connector>);

/// Builds connectors from provider rows and caches them.
pub struct Connectors {
    sealer: Sealer,
    http: UpstreamHttp,
    cache: RwLock<HashMap<ProviderId, CachedConnector>>,
    /// What SAML connectors share; without it, saml providers cannot be served.
    saml: Option<crate::upstream::saml::SamlContext>,
}

impl Connectors {
    pub fn new(sealer: Sealer, http: UpstreamHttp) -> Self {
        Self {
            sealer,
            http,
            cache: RwLock::new(HashMap::new()),
            saml: None,
        }
    }

    /// Enables SAML connectors, sharing `ctx` (database, issuer, fetched metadata).
    pub fn with_saml(mut self, ctx: crate::upstream::saml::SamlContext) -> Self {
        self.saml = Some(ctx);
        self
    }

    /// The outbound HTTP client connectors use (timeouts, retries), for admin checks such as
    /// testing an issuer's discovery document.
    pub fn http(&self) -> &UpstreamHttp {
        &self.http
    }

    /// Drops the cached connector of `id`, so the next login builds it from the changed (or
    /// deleted) row. Other instances notice the row's new `updated_at` instead.
    pub fn forget(&self, id: &ProviderId) {
        self.cache.write().expect("connector cache").remove(id);
    }

    /// The connector for `provider`, built anew if its row changed since it was cached.
    pub fn connector(&self, provider: &Provider) -> Result<Arc<dyn Connector>, StoreError> {
        if let Some((at, c)) = self
            .cache
            .read()
            .expect("connector cache")
            .get(&provider.id)
            && *at == provider.updated_at
        {
            return Ok(c.clone());
        }
        let connector = self.build(provider)?;
        self.cache.write().expect("connector cache").insert(
            provider.id.clone(),
            (provider.updated_at, connector.clone()),
        );
        Ok(connector)
    }

    fn build(&self, provider: &Provider) -> Result<Arc<dyn Connector>, StoreError> {
        let secret = provider
            .sealed_secret
            .as_deref()
            .map(|s| {
                self.sealer.open_string(
                    s,
                    crate::store::sealed::PROVIDER_SECRET.target(provider.id.as_str()),
                )
            })
            .transpose()?;
        match provider.kind {
            ProviderKind::Oidc => {
                let claims: ClaimMapping = provider
                    .settings
                    .get("claims")
                    .cloned()
                    .and_then(|c| serde_json::from_value(c).ok())
                    .unwrap_or_default();
                let config = OidcConfig {
                    id: provider.id.clone(),
                    display_name: provider.display_name.clone(),
                    issuer: provider.issuer.clone().unwrap_or_default(),
                    client_id: provider.client_id.clone(),
                    client_secret: secret,
                    scopes: provider.scopes.clone(),
                    claims,
                };
                Ok(Arc::new(OidcConnector::new(config, self.http.clone())))
            }
            ProviderKind::Saml => self.build_saml(provider),
            ProviderKind::Google => {
                let options: GoogleOptions =
                    options::from_settings(&provider.settings, provider.id.as_str())
                        .map_err(StoreError::Corrupt)?;
                let config = GoogleConfig {
                    id: provider.id.clone(),
                    display_name: provider.display_name.clone(),
                    issuer: provider.issuer.clone().filter(|i| !i.is_empty()),
                    client_id: provider.client_id.clone(),
                    client_secret: required_secret(provider, secret)?,
                    scopes: provider.scopes.clone(),
                    options,
                };
                Ok(Arc::new(GoogleConnector::new(config, self.http.clone())))
            }
            ProviderKind::Github => {
                let settings: options::GithubSettings =
                    options::from_settings(&provider.settings, provider.id.as_str())
                        .map_err(StoreError::Corrupt)?;
                let config = GithubConfig {
                    id: provider.id.clone(),
                    display_name: provider.display_name.clone(),
                    client_id: provider.client_id.clone(),
                    client_secret: required_secret(provider, secret)?,
                    scopes: provider.scopes.clone(),
                    api_base: settings.api_base().map_err(StoreError::Corrupt)?,
                    web_base: settings.web_base().map_err(StoreError::Corrupt)?,
                    options: settings.options(),
                };
                Ok(Arc::new(GithubConnector::new(config, self.http.clone())))
            }
        }
    }
}

/// The client secret a kind cannot work without.
fn required_secret(
    provider: &Provider,
    secret: Option<SecretString>,
) -> Result<SecretString, StoreError> {
    secret.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "provider `{}` of kind {} has no client secret",
            provider.id, provider.kind
        ))
    })
}
