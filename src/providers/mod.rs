//! The provider registry: the `providers` table, `[[providers]]` from portico.toml, and the
//! connectors built from them. What differs between kinds (their options, checks and
//! connectors) is the kind's, looked up in `upstream::kinds`; nothing here matches on a kind.
//!
//! Connectors are cached per provider and rebuilt when the row's `updated_at` changes, so a
//! connector's discovery and JWKS cache survives between requests; nothing in the cache is
//! needed by another instance (it is rebuilt from the database on a miss).

mod config;
pub mod repo;
mod saml;

pub use config::{ProviderConfig, setup, supported_kind, validate_config};
pub use saml::spawn_metadata_refresh;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::crypto::Sealer;
use crate::store::{StoreError, sealed};
use crate::upstream::http::UpstreamHttp;
use crate::upstream::kinds::{self, Row, Shared};
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
    /// The upstream scopes a service may ask the user to add to the stored grant through the
    /// broker (`oidc::broker`); anything else it asks for is refused.
    pub incremental_scopes: Vec<String>,
    /// The kind's options (`upstream::kinds`), as its check wrote them.
    pub settings: serde_json::Value,
    pub email_domains: Vec<String>,
    pub trust_email: bool,
    pub managed_by_config: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The secret the kind keeps sealed beside the row (saml: the SP private key, PEM).
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
/// e-mail and its kind agrees (SAML: the admin said its IdP verifies addresses).
pub fn vouches_for_email(
    kind: ProviderKind,
    trust_email: bool,
    settings: &serde_json::Value,
) -> bool {
    trust_email && kinds::find(kind).vouches_for_email(settings)
}

/// The warning when two or more enabled providers map groups and some have no `group_prefix`:
/// such a provider can send a literal `corp:admin` that the apps read as the `corp` provider's
/// (docs/providers/claims.md). Logged at start, shown on the admin providers page.
pub fn namespace_warning(providers: &[Provider]) -> Option<String> {
    let enabled: Vec<&Provider> = providers.iter().filter(|p| p.enabled).collect();
    let rules = rules_of(&enabled);
    let bare = crate::claims::pipeline::unprefixed(&pairs(&rules));
    (!bare.is_empty()).then(|| {
        format!(
            "providers without a group_prefix beside other providers: {}. Their group names \
             share one namespace with every other provider's, so such a provider can send a \
             group that reads as another's (e.g. `corp:admin`); give each a group_prefix",
            bare.join(", ")
        )
    })
}

/// The first clash of group namespaces among the stored providers (declared and created in the
/// admin UI alike), named: checked at start, after the declared ones are applied.
pub fn namespace_clash(providers: &[Provider]) -> Result<(), String> {
    let all: Vec<&Provider> = providers.iter().collect();
    let rules = rules_of(&all);
    crate::claims::pipeline::check_namespaces(&pairs(&rules), None)
        .map_err(|c| format!("provider `{}`: {}", c.provider, c.message))
}

fn rules_of<'a>(providers: &[&'a Provider]) -> Vec<(&'a str, crate::claims::ClaimRules)> {
    providers
        .iter()
        .filter_map(|p| {
            let rules = crate::claims::ClaimRules::of_settings(&p.settings)?;
            Some((p.id.as_str(), rules))
        })
        .collect()
}

fn pairs<'a>(
    rules: &'a [(&'a str, crate::claims::ClaimRules)],
) -> Vec<(&'a str, &'a crate::claims::ClaimRules)> {
    rules.iter().map(|(id, r)| (*id, r)).collect()
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

    /// The outbound HTTP client connectors use (timeouts, retries), unscoped to any provider,
    /// for admin checks such as testing an issuer's discovery document.
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
        let open = |value: &Option<Vec<u8>>, column: sealed::SealedColumn| {
            value
                .as_deref()
                .map(|s| {
                    self.sealer
                        .open_string(s, column.target(provider.id.as_str()))
                })
                .transpose()
        };
        let row = Row {
            id: &provider.id,
            kind: provider.kind,
            client_id: &provider.client_id,
            client_secret: open(&provider.sealed_secret, sealed::PROVIDER_SECRET)?,
            issuer: provider.issuer.as_deref(),
            scopes: &provider.scopes,
            settings: &provider.settings,
            key: open(&provider.sealed_saml_key, sealed::PROVIDER_SAML_KEY)?,
        };
        // The connector's requests pass its provider's bulkhead and breaker.
        let http = self.http.for_provider(&provider.id);
        let shared = Shared {
            http: &http,
            saml: self.saml.as_ref(),
        };
        kinds::find(provider.kind)
            .build(&row, &shared)
            .map_err(StoreError::Corrupt)
    }
}
