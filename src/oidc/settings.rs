//! Settings of the OpenID Connect provider: the `[oidc]` section, and the `[[clients]]` and
//! `[[providers]]` a deployment declares in portico.toml (upserted at start, managed by config).

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::keys::SigningAlg;
use crate::upstream::oidc::ClaimMapping;
use crate::upstream::{ProviderId, ProviderKind};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// Authorization codes live at most this long (RFC 6749 recommends 10 minutes at most;
    /// one minute is plenty for a redirect).
    pub code_ttl_secs: u64,
    /// Defaults for clients that set no lifetimes of their own.
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// A rotated refresh token presented again within this many seconds is a concurrent
    /// refresh by the same client, not a theft: it gets fresh tokens and no family revocation.
    pub refresh_grace_secs: u64,
    /// How long a user has to finish the upstream login.
    pub pending_login_ttl_secs: u64,
    /// SSO session: ends after this long without use...
    pub session_idle_secs: u64,
    /// ...and at the latest this long after the login.
    pub session_absolute_secs: u64,
    /// The algorithm of RFC 9068 access tokens.
    pub access_token_alg: SigningAlg,
    /// A downstream refresh asks the provider for fresh claims when the stored ones are at
    /// least this old. 0 (the default): on every refresh, as Dex does, so that group changes
    /// reach apps at their next refresh. Raise it to spare a busy provider.
    pub upstream_refresh_interval_secs: u64,
    pub rate_limit: RateLimitSettings,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            code_ttl_secs: 60,
            access_token_ttl_secs: 900,
            id_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 86_400,
            refresh_grace_secs: 10,
            pending_login_ttl_secs: 900,
            session_idle_secs: 8 * 3600,
            session_absolute_secs: 7 * 86_400,
            access_token_alg: SigningAlg::RS256,
            upstream_refresh_interval_secs: 0,
            rate_limit: RateLimitSettings::default(),
        }
    }
}

/// Token-bucket limits on `/token`, `/authorize` and `/userinfo`, per client and per IP.
/// The defaults are far above what one legitimate client or address needs, and above the
/// benchmark targets, so that they only stop floods.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests per second per client IP address, and the burst above it.
    pub per_ip_per_sec: u32,
    pub per_ip_burst: u32,
    /// Requests per second per client_id, and the burst above it.
    pub per_client_per_sec: u32,
    pub per_client_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip_per_sec: 20_000,
            per_ip_burst: 40_000,
            per_client_per_sec: 20_000,
            per_client_burst: 40_000,
        }
    }
}

impl OidcSettings {
    pub fn validate(&self, max_token_lifetime_secs: u64) -> Result<(), String> {
        if self.code_ttl_secs == 0 || self.code_ttl_secs > 60 {
            return Err("oidc.code_ttl_secs must be between 1 and 60".into());
        }
        for (name, v) in [
            ("oidc.access_token_ttl_secs", self.access_token_ttl_secs),
            ("oidc.id_token_ttl_secs", self.id_token_ttl_secs),
        ] {
            if v == 0 || v > max_token_lifetime_secs {
                return Err(format!(
                    "{name} must be between 1 and keys.max_token_lifetime_secs ({max_token_lifetime_secs})"
                ));
            }
        }
        if self.session_idle_secs == 0 || self.session_absolute_secs < self.session_idle_secs {
            return Err(
                "oidc.session_idle_secs must be at least 1 and at most oidc.session_absolute_secs"
                    .into(),
            );
        }
        let r = &self.rate_limit;
        if r.enabled
            && [
                r.per_ip_per_sec,
                r.per_ip_burst,
                r.per_client_per_sec,
                r.per_client_burst,
            ]
            .contains(&0)
        {
            return Err(
                "oidc.rate_limit values must be at least 1 (or set enabled = false)".into(),
            );
        }
        Ok(())
    }
}

/// A `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub client_type: String,
    #[serde(
        default,
        deserialize_with = "secret_opt",
        serialize_with = "redact_opt"
    )]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_providers: Vec<String>,
    /// Resource indicators (RFC 8707) the client may ask tokens for; none by default.
    #[serde(default)]
    pub allowed_resources: Vec<String>,
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub id_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub refresh_token_ttl_secs: Option<u64>,
}

/// A `[[providers]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub id: ProviderId,
    pub kind: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub client_id: String,
    #[serde(
        default,
        deserialize_with = "secret_opt",
        serialize_with = "redact_opt"
    )]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub email_domains: Vec<String>,
    #[serde(default)]
    pub trust_email: bool,
    #[serde(default)]
    pub claims: ClaimMapping,
    /// kind saml: the IdP's metadata, pasted (XML) or fetched from a URL and refreshed.
    #[serde(default)]
    pub saml_idp_metadata_xml: Option<String>,
    #[serde(default)]
    pub saml_idp_metadata_url: Option<String>,
    /// kind saml: the `[providers.saml]` table (SP side, mapping, IdP-initiated...).
    #[serde(default)]
    pub saml: crate::upstream::saml::SamlProviderSettings,
    // Kind-specific options, checked by `providers::options::setup`.
    /// google: Workspace domains allowed (the ID token's `hd`).
    #[serde(default)]
    pub hosted_domains: Vec<String>,
    /// google: ask for a refresh token (default true).
    #[serde(default)]
    pub offline_access: Option<bool>,
    /// github: organisations (`org`) or teams (`org:team`) allowed to log in.
    #[serde(default)]
    pub allowed_orgs: Vec<String>,
    /// github: REST API base, for GitHub Enterprise Server (`https://HOST/api/v3`).
    #[serde(default)]
    pub github_api_base: Option<String>,
    /// github: web base with `/login/oauth/*`, for GitHub Enterprise Server (`https://HOST`).
    #[serde(default)]
    pub github_web_base: Option<String>,
}

fn yes() -> bool {
    true
}

impl ProviderConfig {
    /// The kind, refused unless this build has a connector for it.
    pub fn checked_kind(&self) -> Result<ProviderKind, String> {
        supported_kind(&self.kind).map_err(|e| format!("provider `{}`: {e}", self.id))
    }
}

/// Parses a provider kind, refusing kinds without a connector in this build.
pub fn supported_kind(raw: &str) -> Result<ProviderKind, String> {
    match ProviderKind::parse(raw) {
        Some(kind) if kind.is_supported() => Ok(kind),
        Some(kind) => Err(format!(
            "kind `{kind}` is not available in this build (available: oidc, google, github, saml)"
        )),
        None => Err(format!(
            "unknown kind `{raw}` (kinds: oidc, google, github, saml)"
        )),
    }
}

pub(crate) fn secret_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

pub(crate) fn redact_opt<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_connector_and_unknown_kinds_are_refused() {
        assert_eq!(supported_kind("oidc"), Ok(ProviderKind::Oidc));
        assert_eq!(supported_kind("saml"), Ok(ProviderKind::Saml));
        assert_eq!(supported_kind("google"), Ok(ProviderKind::Google));
        assert_eq!(supported_kind("github"), Ok(ProviderKind::Github));
        assert!(supported_kind("ldap").unwrap_err().contains("unknown kind"));
    }

    #[test]
    fn a_config_provider_of_another_kind_stops_the_start() {
        let p: ProviderConfig = toml::from_str(
            r#"
id = "gh"
kind = "github"
client_id = "x"
"#,
        )
        .unwrap();
        let err = crate::clients::validate_config(&[], &[p]).unwrap_err();
        assert!(
            err.contains("provider `gh`") && err.contains("github"),
            "{err}"
        );
    }

    #[test]
    fn code_lifetime_is_capped_at_sixty_seconds() {
        let s = OidcSettings {
            code_ttl_secs: 61,
            ..OidcSettings::default()
        };
        assert!(s.validate(86_400).is_err());
        assert!(OidcSettings::default().validate(86_400).is_ok());
    }

    #[test]
    fn config_check_shows_clients_and_providers_with_secrets_redacted() {
        use figment::Figment;
        use figment::providers::{Format, Toml};
        let settings = crate::config::Settings::from_figment(Figment::new().merge(Toml::string(
            r#"
[oidc]
refresh_grace_secs = 3

[[clients]]
client_id = "app"
type = "confidential"
client_secret = "a-client-secret-that-is-long-enough-123"
redirect_uris = ["https://app.example/cb"]

[[providers]]
id = "corp"
kind = "oidc"
client_id = "portico"
client_secret = "upstream-client-secret"
issuer = "https://idp.example"
[providers.claims]
groups = "roles"
"#,
        )))
        .unwrap();
        assert_eq!(settings.oidc.refresh_grace_secs, 3);
        assert_eq!(
            settings.providers[0].claims.groups.as_deref(),
            Some("roles")
        );
        let out = settings.redacted_toml();
        assert!(!out.contains("a-client-secret"), "{out}");
        assert!(!out.contains("upstream-client-secret"), "{out}");
        assert!(
            out.contains("[[clients]]") && out.contains("[[providers]]"),
            "{out}"
        );
    }
}
