//! The SAML connector: a provider of kind `saml` behind the [`SamlLogin`] capability.
//!
//! IdP metadata comes pasted (parsed once, when the connector is built) or from a URL: then it
//! is cached in [`SamlContext`], shared by every connector of this process, fetched on first
//! use and again every `metadata_refresh_secs` by the maintenance task. A failed refresh keeps
//! the last good copy, so an IdP outage of its metadata endpoint does not stop logins.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use super::{
    DbOutstandingRequests, DbReplayCache, IdpMetadata, OutstandingRequests, SamlError, SamlOptions,
    SpConfig, VerifyContext, redirect_request, sp_metadata_xml, verify_response,
};
use serde_json::{Map, Value};

use crate::claims::{self, ClaimRules, MappedClaims, RawClaims};
use crate::crypto::random_token;
use crate::store::{self, Store};
use crate::upstream::{
    Connector, IdpInitiatedTarget, LoginRequest, LoginStart, ProviderId, ProviderKind, SamlLogin,
    UpstreamError, UpstreamIdentity,
};

/// What SAML connectors share: the database (outstanding requests, replay cache), Portico's
/// issuer, the HTTP client for metadata, and the metadata fetched from URLs.
#[derive(Clone)]
pub struct SamlContext {
    store: Store,
    issuer: String,
    http: reqwest::Client,
    fetched: Arc<RwLock<HashMap<String, Fetched>>>,
}

#[derive(Clone)]
struct Fetched {
    metadata: Arc<IdpMetadata>,
    at: i64,
}

impl SamlContext {
    pub fn new(store: Store, issuer: &str, http: reqwest::Client) -> Self {
        Self {
            store,
            issuer: issuer.trim_end_matches('/').to_owned(),
            http,
            fetched: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The metadata behind `url`: the cached copy, or fetched now on first use.
    async fn metadata_at(&self, url: &str) -> Result<Arc<IdpMetadata>, SamlError> {
        if let Some(f) = self.fetched.read().expect("metadata cache").get(url) {
            return Ok(f.metadata.clone());
        }
        self.fetch(url).await
    }

    async fn fetch(&self, url: &str) -> Result<Arc<IdpMetadata>, SamlError> {
        let metadata = Arc::new(IdpMetadata::fetch(&self.http, url).await?);
        self.fetched.write().expect("metadata cache").insert(
            url.to_owned(),
            Fetched {
                metadata: metadata.clone(),
                at: store::now(),
            },
        );
        Ok(metadata)
    }

    /// Fetches again the URL metadata of `provider` (its row's `settings`) when its copy is
    /// older than the provider's interval; a failure keeps the last good copy.
    /// Rows of other kinds name no metadata URL.
    pub async fn refresh_due(&self, provider: &ProviderId, settings: &serde_json::Value) {
        let Ok(options) = serde_json::from_value::<SamlOptions>(settings.clone()) else {
            return;
        };
        let Some(url) = options.saml_idp_metadata_url else {
            return;
        };
        let due = self
            .fetched
            .read()
            .expect("metadata cache")
            .get(&url)
            .is_none_or(|f| store::now() - f.at >= options.saml.metadata_refresh_secs as i64);
        if due && let Err(e) = self.fetch(&url).await {
            tracing::warn!(provider = %provider, error = %e, "SAML IdP metadata refresh failed");
        }
    }
}

enum MetadataSource {
    Pasted(Arc<IdpMetadata>),
    Url(String),
}

/// The provider's claims pipeline over an assertion's groups and attributes (each attribute a
/// list of its values, the shape `extra_claims` paths read): a login's, and the admin's
/// preview.
pub fn mapped_claims(
    rules: &ClaimRules,
    attributes: &BTreeMap<String, Vec<String>>,
    groups: Vec<String>,
) -> MappedClaims {
    let claims: Map<String, Value> = attributes
        .iter()
        .map(|(name, values)| (name.clone(), Value::from(values.clone())))
        .collect();
    claims::apply(
        rules,
        RawClaims {
            groups,
            claims: &claims,
        },
    )
}

pub struct SamlConnector {
    id: ProviderId,
    sp: SpConfig,
    rules: ClaimRules,
    source: MetadataSource,
    idp_initiated: Option<IdpInitiatedTarget>,
    max_session_secs: u64,
    /// Whether the IdP's addresses count as verified (the `email_verified` setting).
    email_verified: bool,
    ctx: SamlContext,
}

impl SamlConnector {
    /// Builds the connector from a provider row's options and its opened SP private key.
    pub fn new(
        id: ProviderId,
        options: SamlOptions,
        sp_key: Option<SecretString>,
        ctx: SamlContext,
    ) -> Result<Self, String> {
        let mut settings = options.saml;
        settings.sp_signing_key = sp_key;
        let mut sp = settings.sp(&ctx.issuer, id.as_str());
        sp.name_id_format = settings.name_id_format_urn()?;
        sp.attributes = settings.attributes.mapping();
        sp.signing = settings.signing_key()?;
        sp.clock_skew_secs = i64::from(settings.clock_skew_secs);
        sp.allow_rsa_sha1 = settings.allow_rsa_sha1;
        sp.allow_idp_initiated = settings.idp_initiated.is_some();
        let source = match (options.saml_idp_metadata_xml, options.saml_idp_metadata_url) {
            (Some(xml), _) if !xml.trim().is_empty() => MetadataSource::Pasted(Arc::new(
                IdpMetadata::parse(&xml).map_err(|e| e.to_string())?,
            )),
            (_, Some(url)) => MetadataSource::Url(url),
            _ => return Err("no IdP metadata (XML or URL)".into()),
        };
        Ok(Self {
            id,
            sp,
            rules: options.rules,
            source,
            idp_initiated: settings.idp_initiated,
            max_session_secs: settings.max_session_secs,
            email_verified: settings.email_verified,
            ctx,
        })
    }

    async fn idp(&self) -> Result<Arc<IdpMetadata>, SamlError> {
        match &self.source {
            MetadataSource::Pasted(m) => Ok(m.clone()),
            MetadataSource::Url(url) => self.ctx.metadata_at(url).await,
        }
    }
}

/// Maps a refusal to the upstream interface's error; the text never carries XML.
fn upstream(e: SamlError) -> UpstreamError {
    match e {
        SamlError::MetadataFetch(_) => UpstreamError::Unavailable(e.to_string()),
        SamlError::Metadata(_) | SamlError::SigningKey(_) | SamlError::Request(_) => {
            UpstreamError::Misconfigured(e.to_string())
        }
        SamlError::Store(ref inner) => {
            tracing::error!(error = %inner, "SAML store failed");
            UpstreamError::SamlResponse(e.reason())
        }
        other => UpstreamError::SamlResponse(other.reason()),
    }
}

/// Outstanding requests as seen by one login: only the AuthnRequest its pending
/// authorization sent may be answered (and consumed), so a Response cannot be posted into
/// someone else's login even with a valid InResponseTo of its own.
struct ExpectedRequest<'a> {
    expected: Option<&'a str>,
    requests: DbOutstandingRequests,
}

impl OutstandingRequests for ExpectedRequest<'_> {
    fn may_answer(&self, request_id: &str) -> bool {
        self.expected == Some(request_id)
    }

    fn consume<'a>(&'a self, request_id: &'a str) -> BoxFuture<'a, Result<bool, SamlError>> {
        Box::pin(async move {
            if !self.may_answer(request_id) {
                return Ok(false);
            }
            self.requests.consume(request_id).await
        })
    }
}

impl Connector for SamlConnector {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Saml
    }

    fn saml_login(&self) -> Option<&dyn SamlLogin> {
        Some(self)
    }

    fn max_session_secs(&self) -> Option<u64> {
        Some(self.max_session_secs)
    }
}

impl SamlLogin for SamlConnector {
    fn begin<'a>(
        &'a self,
        request: LoginRequest<'a>,
    ) -> BoxFuture<'a, Result<LoginStart, UpstreamError>> {
        Box::pin(async move {
            let idp = self.idp().await.map_err(upstream)?;
            let relay_state = random_token("");
            // SAML has no max_age: a fresh authentication is the only way to honour one.
            let force_authn = request.force_login || request.max_age.is_some();
            let request =
                redirect_request(&self.sp, &idp, relay_state.expose_secret(), force_authn)
                    .map_err(upstream)?;
            DbOutstandingRequests::new(self.ctx.store.clone(), self.id.as_str())
                .remember(&request.id, store::now())
                .await
                .map_err(upstream)?;
            Ok(LoginStart {
                url: request.url,
                state: relay_state,
                secret: SecretString::from(request.id),
            })
        })
    }

    fn finish<'a>(
        &'a self,
        saml_response: &'a str,
        secret: Option<&'a SecretString>,
    ) -> BoxFuture<'a, Result<UpstreamIdentity, UpstreamError>> {
        Box::pin(async move {
            let idp = self.idp().await.map_err(upstream)?;
            // The answer to our own request must name it: no unsolicited Response may stand
            // in for it, even where IdP-initiated logins are allowed.
            let solicited_sp;
            let sp = match secret {
                Some(_) if self.sp.allow_idp_initiated => {
                    solicited_sp = SpConfig {
                        allow_idp_initiated: false,
                        ..self.sp.clone()
                    };
                    &solicited_sp
                }
                _ => &self.sp,
            };
            let requests = ExpectedRequest {
                expected: secret.map(|s| s.expose_secret()),
                requests: DbOutstandingRequests::new(self.ctx.store.clone(), self.id.as_str()),
            };
            let replay = DbReplayCache::new(self.ctx.store.clone());
            let ctx = VerifyContext {
                sp,
                idp: &idp,
                now: store::now(),
                requests: &requests,
                replay: &replay,
            };
            let verified = verify_response(saml_response, &ctx)
                .await
                .map_err(upstream)?;
            let mapped = mapped_claims(&self.rules, &verified.attributes, verified.groups);
            mapped.warn(self.id.as_str());
            Ok(UpstreamIdentity {
                provider: self.id.clone(),
                subject: verified.name_id,
                email: verified.email,
                // Signed by the pinned IdP, but an IdP vouches for nothing it was not asked to:
                // the admin says whether it verifies addresses (and `trust_email` whether they
                // may link accounts).
                email_verified: self.email_verified,
                name: verified.name,
                picture: None,
                groups: mapped.groups,
                extra_claims: mapped.extra_claims,
                auth_time: verified.authn_instant,
                tokens: None,
            })
        })
    }

    fn idp_initiated(&self) -> Option<&IdpInitiatedTarget> {
        self.idp_initiated.as_ref()
    }

    fn sp_metadata(&self) -> Result<String, UpstreamError> {
        sp_metadata_xml(&self.sp).map_err(upstream)
    }
}
