//! `[[providers]]` in portico.toml: the shape of one entry, and its check at load time (the
//! per-kind rules of `providers::options`, which the admin API runs too).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::upstream::oidc::ClaimMapping;
use crate::upstream::{ProviderId, ProviderKind};

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
        deserialize_with = "crate::crypto::secret_serde::optional",
        serialize_with = "crate::crypto::secret_serde::redacted"
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

/// Checks `[[providers]]` at load time, so a bad entry stops the start with a message naming
/// it.
pub fn validate_config(providers: &[ProviderConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for p in providers {
        p.checked_kind()?;
        if !seen.insert(p.id.clone()) {
            return Err(format!("provider `{}` is declared twice", p.id));
        }
        super::options::setup(p)?;
    }
    Ok(())
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
        let err = validate_config(&[p]).unwrap_err();
        assert!(
            err.contains("provider `gh`") && err.contains("github"),
            "{err}"
        );
    }

    #[test]
    fn a_providers_entry_reads_its_saml_tables() {
        let p: ProviderConfig = toml::from_str(
            r#"
id = "okta"
kind = "saml"
saml_idp_metadata_url = "https://acme.okta.com/app/x/sso/saml/metadata"
[saml]
name_id_format = "email"
max_session_secs = 3600
[saml.attributes]
email = ["mail"]
[saml.idp_initiated]
client_id = "wiki"
redirect_uri = "https://wiki.example.com/cb"
"#,
        )
        .unwrap();
        assert_eq!(p.saml.max_session_secs, 3600);
        assert_eq!(p.saml.attributes.email, Some(vec!["mail".to_owned()]));
        let target = p.saml.idp_initiated.as_ref().unwrap();
        assert_eq!(target.scope, "openid email profile");
        assert!(
            crate::upstream::saml::validate_provider(
                None,
                p.saml_idp_metadata_url.as_deref(),
                &p.saml
            )
            .is_ok()
        );
        assert!(
            toml::from_str::<ProviderConfig>("id = \"x\"\nkind = \"saml\"\n[saml]\nbogus = 1\n")
                .is_err()
        );
    }
}
