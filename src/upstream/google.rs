//! Google: the generic OIDC connector, preset for accounts.google.com.
//!
//! Google is a conforming OIDC provider, so discovery, the ID token checks, PKCE and userinfo
//! are the generic connector's. The preset adds what Google does differently:
//! - it issues a refresh token only for `access_type=offline` *and* a consent screen, so both
//!   go on the authorize URL when Portico wants one;
//! - `hd` on the authorize URL only narrows Google's account chooser and anyone can edit it, so
//!   the hosted-domain restriction is enforced on the verified ID token's `hd` claim;
//! - it rejects `prompt=login`: a forced login becomes `prompt=select_account` and `max_age=0`.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::http::UpstreamHttp;
use super::kinds::{self, Field, Invalid, Kind, Row, Shared, Widget};
use super::oidc::{ClaimMapping, OidcConfig, OidcConnector, Preset, map_claims, raw_claims};
use super::{
    Connector, LoginRequest, Mapped, ProviderId, ProviderKind, UpstreamError, UpstreamIdentity,
};
use crate::claims::ClaimRules;

pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Kind `google`.
pub struct Google;

/// Google's own settings (the provider's kind-specific options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GoogleOptions {
    /// Google Workspace domains whose accounts may log in, matched against the ID token's
    /// `hd` claim. Empty lets in any Google account, consumer accounts included.
    pub hosted_domains: Vec<String>,
    /// Ask Google for a refresh token (`access_type=offline&prompt=consent`), so that the
    /// identity can be refreshed and upstream access tokens served later.
    pub offline_access: bool,
    /// Static and extra claims (Google sends no groups) ([`crate::claims::pipeline`]).
    #[serde(flatten)]
    pub rules: ClaimRules,
}

impl Default for GoogleOptions {
    fn default() -> Self {
        Self {
            hosted_domains: Vec::new(),
            offline_access: true,
            rules: ClaimRules::default(),
        }
    }
}

impl Kind for Google {
    type Options = GoogleOptions;
    const KIND: ProviderKind = ProviderKind::Google;
    const TITLE: &'static str = "Google";
    const SUMMARY: &'static str = "Google accounts and Workspace";
    const ISSUED_BY: &'static str = "Google";
    const CLIENT_SECRET: kinds::Need = kinds::Need::Required;
    const DISCOVERY: bool = true;
    const FORM: &'static [Field] = &[
        kinds::CLIENT_ID,
        kinds::CLIENT_SECRET,
        Field::new(
            "hosted_domains",
            "Hosted domains",
            "Google Workspace domains allowed, separated by spaces; empty: any account",
            Widget::Words,
        ),
        Field::new(
            "offline_access",
            "Ask for a refresh token (offline access)",
            "",
            Widget::Checkbox,
        ),
        Field::new(
            "issuer",
            "Issuer",
            "optional; default https://accounts.google.com",
            Widget::Text,
        ),
        kinds::SCOPES,
    ];

    fn check(options: &mut GoogleOptions, _from_config: bool) -> Result<(), Invalid> {
        options.hosted_domains = kinds::domain_names("hosted_domains", &options.hosted_domains)?;
        Ok(())
    }

    /// The standard claims (the hosted-domain check needs a signed ID token: not previewed).
    fn preview(
        o: &GoogleOptions,
        _provider: &ProviderId,
        raw: &Map<String, Value>,
    ) -> Result<Mapped, String> {
        Ok(map_claims(&ClaimMapping::default(), &o.rules, raw))
    }

    fn build(
        options: GoogleOptions,
        row: &Row<'_>,
        shared: &Shared<'_>,
    ) -> Result<Arc<dyn Connector>, String> {
        let config = GoogleConfig {
            id: row.id.clone(),
            issuer: row.issuer.filter(|i| !i.is_empty()).map(str::to_owned),
            client_id: row.client_id.to_owned(),
            client_secret: row.secret()?,
            scopes: row.scopes.to_vec(),
            options,
        };
        Ok(Arc::new(GoogleConnector::new(config, shared.http.clone())))
    }
}

#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub id: ProviderId,
    /// `None` means [`GOOGLE_ISSUER`]; tests point it at a local server.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Scopes besides `openid`; empty means `email profile`.
    pub scopes: Vec<String>,
    pub options: GoogleOptions,
}

/// The generic connector with Google's preset: its options.
pub type GoogleConnector = OidcConnector<GoogleOptions>;

impl GoogleConnector {
    pub fn new(config: GoogleConfig, http: UpstreamHttp) -> Self {
        let scopes = if config.scopes.is_empty() {
            vec!["email".to_owned(), "profile".to_owned()]
        } else {
            config.scopes
        };
        let mut options = config.options;
        for domain in &mut options.hosted_domains {
            domain.make_ascii_lowercase();
        }
        let oidc = OidcConfig {
            id: config.id,
            issuer: config.issuer.unwrap_or_else(|| GOOGLE_ISSUER.to_owned()),
            client_id: config.client_id,
            client_secret: Some(config.client_secret),
            scopes,
            // Google's claims are the standard ones; it has no groups claim.
            claims: ClaimMapping::default(),
            rules: options.rules.clone(),
        };
        OidcConnector::with_preset(oidc, http, options)
    }

    pub fn options(&self) -> &GoogleOptions {
        self.preset()
    }
}

impl Preset for GoogleOptions {
    const KIND: ProviderKind = ProviderKind::Google;

    /// The generic authorize URL with Google's parameters put in.
    fn authorize_url(&self, url: Url, request: &LoginRequest<'_>) -> Url {
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "prompt")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut prompt = Vec::new();
        if self.offline_access {
            pairs.push(("access_type".into(), "offline".into()));
            prompt.push("consent");
        }
        if request.force_login {
            prompt.push("select_account");
            if request.max_age.is_none() {
                pairs.push(("max_age".into(), "0".into()));
            }
        }
        if !prompt.is_empty() {
            pairs.push(("prompt".into(), prompt.join(" ")));
        }
        // A single domain preselects it in the chooser; the real check is on the ID token.
        if let [domain] = self.hosted_domains.as_slice() {
            pairs.push(("hd".into(), domain.clone()));
        }
        // Asking for more: Google keeps what the user granted before in the new grant too.
        if !request.extra_scopes.is_empty() {
            pairs.push(("include_granted_scopes".into(), "true".into()));
        }
        let mut out = url;
        out.query_pairs_mut().clear().extend_pairs(pairs);
        out
    }

    /// Enforces `hosted_domains` on the `hd` claim of the ID token, which the generic connector
    /// has already verified. Google may omit the ID token on refresh; then the login's (same
    /// subject) stands.
    fn check(
        &self,
        identity: &UpstreamIdentity,
        previous: Option<&UpstreamIdentity>,
    ) -> Result<(), UpstreamError> {
        let allowed = &self.hosted_domains;
        if allowed.is_empty() {
            return Ok(());
        }
        let id_token = |i: &UpstreamIdentity| i.tokens.as_ref().and_then(|t| t.id_token.clone());
        let id_token = id_token(identity).or_else(|| previous.and_then(id_token));
        let id_token = id_token.ok_or_else(|| {
            UpstreamError::Refused(
                "hosted_domains is set but Google returned no ID token to check `hd` in".into(),
            )
        })?;
        let claims = raw_claims(id_token.expose_secret())?;
        match claims.get("hd").and_then(Value::as_str) {
            Some(hd) if allowed.iter().any(|d| d.eq_ignore_ascii_case(hd)) => Ok(()),
            Some(hd) => Err(UpstreamError::Refused(format!(
                "the Google account's hosted domain `{hd}` is not one of hosted_domains ({})",
                allowed.join(", ")
            ))),
            None => Err(UpstreamError::Refused(format!(
                "the Google account belongs to no hosted domain, and hosted_domains allows only {}",
                allowed.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::http::HttpSettings;

    fn connector(options: GoogleOptions) -> GoogleConnector {
        GoogleConnector::new(
            GoogleConfig {
                id: ProviderId::parse("google").unwrap(),
                issuer: None,
                client_id: "cid".into(),
                client_secret: SecretString::from("secret"),
                scopes: Vec::new(),
                options,
            },
            UpstreamHttp::new(HttpSettings::default()).unwrap(),
        )
    }

    fn request(force_login: bool) -> LoginRequest<'static> {
        LoginRequest {
            redirect_uri: "https://portico.example/callback/google",
            login_hint: None,
            force_login,
            max_age: None,
            extra_scopes: &[],
        }
    }

    fn query(url: &Url, key: &str) -> Vec<String> {
        url.query_pairs()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    #[test]
    fn a_forced_login_uses_prompts_google_knows() {
        let c = connector(GoogleOptions::default());
        let generic =
            Url::parse("https://accounts.google.com/o/oauth2/v2/auth?prompt=login&state=s")
                .unwrap();
        let url = c.options().authorize_url(generic, &request(true));
        assert_eq!(query(&url, "prompt"), ["consent select_account"]);
        assert_eq!(query(&url, "max_age"), ["0"]);
        assert_eq!(query(&url, "access_type"), ["offline"]);
        assert_eq!(query(&url, "state"), ["s"]);
    }

    #[test]
    fn without_offline_access_no_consent_is_forced() {
        let c = connector(GoogleOptions {
            offline_access: false,
            hosted_domains: vec!["Example.COM".into(), "example.org".into()],
            ..GoogleOptions::default()
        });
        let generic = Url::parse("https://accounts.google.com/auth?state=s").unwrap();
        let url = c.options().authorize_url(generic, &request(false));
        assert!(query(&url, "prompt").is_empty());
        assert!(query(&url, "access_type").is_empty());
        // Several domains: no preselection, the ID token check does the work.
        assert!(query(&url, "hd").is_empty());
        assert_eq!(c.options().hosted_domains, ["example.com", "example.org"]);
    }
}
