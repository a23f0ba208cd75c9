//! `[[providers]]` in portico.toml: the shape of one entry, and its check at load time (the
//! kind's rules from `upstream::kinds`, which the admin API runs too).

use secrecy::{ExposeSecret, SecretString};

use crate::claims::ClaimRules;
use crate::crypto::Sealer;
use crate::store::sealed;
use serde::{Deserialize, Serialize};

use crate::upstream::kinds::{self, Checked, Entry, Options};
use crate::upstream::{ProviderId, ProviderKind};

/// A `[[providers]]` entry: the fields every provider has, and its kind's options.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// The upstream scopes a service may ask the user to add through the broker.
    #[serde(default)]
    pub incremental_scopes: Vec<String>,
    #[serde(default)]
    pub email_domains: Vec<String>,
    #[serde(default)]
    pub trust_email: bool,
    /// The other keys: options of the entry's kind (`hosted_domains`, the `[providers.saml]`
    /// table...), each refused when read unless some kind has it.
    #[serde(flatten)]
    pub options: Options,
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

impl super::Provider {
    /// Whether storing `declared` would change this row: any field the start writes, the
    /// client secret and the kind's sealed key compared opened. A secret that no longer opens
    /// counts as changed.
    pub fn differs_from(&self, declared: &ProviderConfig, sealer: &Sealer) -> Result<bool, String> {
        let setup = setup(declared)?;
        let opened = |value: &Option<Vec<u8>>, column: sealed::SealedColumn| {
            value.as_deref().map(|v| {
                sealer
                    .open_string(v, column.target(self.id.as_str()))
                    .map(|s| s.expose_secret().to_owned())
                    .ok()
            })
        };
        let wanted =
            |secret: Option<&SecretString>| secret.map(|s| Some(s.expose_secret().to_owned()));
        let same = self.kind == declared.checked_kind()?
            && self.display_name
                == declared
                    .display_name
                    .clone()
                    .unwrap_or_else(|| declared.id.to_string())
            && self.enabled == declared.enabled
            && self.client_id == declared.client_id
            && self.issuer == declared.issuer
            && self.scopes == setup.scopes
            && self.incremental_scopes == setup.incremental_scopes
            && self.settings == setup.settings
            && self.email_domains == declared.email_domains
            && self.trust_email == declared.trust_email
            && opened(&self.sealed_secret, sealed::PROVIDER_SECRET)
                == wanted(declared.client_secret.as_ref())
            && opened(&self.sealed_saml_key, sealed::PROVIDER_SAML_KEY)
                == wanted(setup.key.as_ref());
        Ok(!same)
    }
}

/// Parses a provider kind, refusing kinds without a connector in this build.
pub fn supported_kind(raw: &str) -> Result<ProviderKind, String> {
    ProviderKind::parse(raw).ok_or_else(|| {
        let known: Vec<&str> = kinds::KINDS.iter().map(|k| k.kind().as_str()).collect();
        format!(
            "“{raw}” is not a provider kind: choose {}.",
            known.join(", ")
        )
    })
}

/// Checks `p` for its kind and returns what its row stores. A field of another kind is an
/// error, not silently ignored.
pub fn setup(p: &ProviderConfig) -> Result<Checked, String> {
    let kind = p.checked_kind()?;
    let entry = Entry {
        kind,
        client_id: &p.client_id,
        has_secret: p.client_secret.is_some(),
        issuer: p.issuer.as_deref(),
        scopes: p.scopes.as_deref(),
        incremental_scopes: &p.incremental_scopes,
        options: &p.options,
        from_config: true,
    };
    kinds::find(kind)
        .check(&entry)
        .map_err(|errors| format!("provider `{}`: {}", p.id, errors[0]))
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
        setup(p)?;
    }
    let rules: Vec<(&str, ClaimRules)> = providers
        .iter()
        .filter_map(|p| {
            Some((
                p.id.as_str(),
                ClaimRules::of_settings(&p.options.to_value())?,
            ))
        })
        .collect();
    let pairs: Vec<(&str, &ClaimRules)> = rules.iter().map(|(id, r)| (*id, r)).collect();
    crate::claims::pipeline::check_namespaces(&pairs, None)
        .map_err(|c| format!("provider `{}`: {}", c.provider, c.message))
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
        assert!(
            supported_kind("ldap")
                .unwrap_err()
                .contains("is not a provider kind")
        );
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
            err.contains("provider `gh`: client_secret:") && err.contains("GitHub"),
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
        let stored = setup(&p).unwrap().settings;
        assert_eq!(stored["saml"]["max_session_secs"], 3600);
        assert_eq!(stored["saml"]["attributes"]["email"][0], "mail");
        assert_eq!(
            stored["saml"]["idp_initiated"]["scope"],
            "openid email profile"
        );
        assert!(
            toml::from_str::<ProviderConfig>("id = \"x\"\nkind = \"saml\"\n[saml]\nbogus = 1\n")
                .is_err()
        );
    }

    fn entry(body: &str) -> ProviderConfig {
        toml::from_str(&format!("id = \"p\"\nclient_id = \"cid\"\n{body}")).unwrap()
    }

    #[test]
    fn each_kind_gets_its_default_scopes() {
        let oidc = setup(&entry("kind = \"oidc\"\nissuer = \"https://idp.example\"")).unwrap();
        assert_eq!(oidc.scopes, ["openid", "email", "profile"]);
        // GitHub is not OIDC: no default here, the connector's (`read:user user:email`) applies.
        let github = setup(&entry("kind = \"github\"\nclient_secret = \"s\"")).unwrap();
        assert!(github.scopes.is_empty());
        let google = setup(&entry("kind = \"google\"\nclient_secret = \"s\"")).unwrap();
        assert!(google.scopes.is_empty());
    }

    #[test]
    fn incremental_scopes_are_split_and_kept_once() {
        let github = setup(&entry(
            "kind = \"github\"\nclient_secret = \"s\"\nincremental_scopes = [\"repo read:org\", \"repo\"]",
        ))
        .unwrap();
        assert_eq!(github.incremental_scopes, ["repo", "read:org"]);
        let oidc = setup(&entry("kind = \"oidc\"\nissuer = \"https://idp.example\"")).unwrap();
        assert!(oidc.incremental_scopes.is_empty());
    }

    #[test]
    fn kind_options_land_in_settings() {
        let google = setup(&entry(
            "kind = \"google\"\nclient_secret = \"s\"\nhosted_domains = [\" Example.com \"]\n\
             offline_access = false",
        ))
        .unwrap();
        assert_eq!(
            google.settings["hosted_domains"],
            serde_json::json!(["example.com"])
        );
        assert_eq!(google.settings["offline_access"], false);
        // Every kind stores its claims pipeline, its defaults included.
        assert_eq!(google.settings["max_groups"], 100);
        assert!(google.settings["group_prefix"].is_null());
        let github = setup(&entry(
            "kind = \"github\"\nclient_secret = \"s\"\nallowed_orgs = [\"acme:platform\"]\n\
             github_api_base = \"https://ghe.example/api/v3/\"",
        ))
        .unwrap();
        assert_eq!(github.settings["allowed_orgs"][0], "acme:platform");
        assert_eq!(
            github.settings["github_api_base"],
            "https://ghe.example/api/v3/"
        );
        assert!(github.settings["github_web_base"].is_null());
    }

    #[test]
    fn wrong_or_misplaced_fields_are_refused_with_the_field_named() {
        let cases = [
            (
                "kind = \"oidc\"",
                "Enter the issuer URL, e.g. https://accounts.example.com.",
            ),
            (
                "kind = \"google\"",
                "client_secret: Enter the client secret Google gave you.",
            ),
            (
                "kind = \"github\"",
                "client_secret: Enter the client secret GitHub gave you.",
            ),
            (
                "kind = \"github\"\nclient_secret = \"s\"\nhosted_domains = [\"a.example\"]",
                "hosted_domains is an option of Google providers only",
            ),
            (
                "kind = \"oidc\"\nissuer = \"https://i.example\"\nallowed_orgs = [\"acme\"]",
                "allowed_orgs is an option of GitHub providers only",
            ),
            (
                "kind = \"google\"\nclient_secret = \"s\"\ngithub_api_base = \"https://x.example\"",
                "github_api_base is an option of GitHub providers only",
            ),
            (
                "kind = \"github\"\nclient_secret = \"s\"\ngithub_web_base = \"ftp://x.example\"",
                "github_web_base",
            ),
            (
                "kind = \"github\"\nclient_secret = \"s\"\nissuer = \"https://github.com\"",
                "Leave the issuer empty for GitHub",
            ),
            (
                "kind = \"google\"\nclient_secret = \"s\"\nhosted_domains = [\"not a domain\"]",
                "hosted_domains: “not a domain” is not a domain name",
            ),
            (
                "kind = \"github\"\nclient_secret = \"s\"\nincremental_scopes = [\"re\\\\po\"]",
                "is not a valid scope",
            ),
            (
                "kind = \"saml\"\nsaml_idp_metadata_url = \"https://idp.example/m\"\n\
                 incremental_scopes = [\"repo\"]",
                "SAML 2.0 providers have no scopes",
            ),
        ];
        for (body, expected) in cases {
            let err = setup(&entry(body)).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
            assert!(err.starts_with("provider `p`"), "{err}");
        }
        let typo =
            toml::from_str::<ProviderConfig>("id = \"p\"\nkind = \"google\"\nhosted_domain = []");
        assert!(typo.unwrap_err().to_string().contains("hosted_domain"));
    }

    #[test]
    fn secrets_in_options_are_redacted_when_written() {
        let p =
            entry("kind = \"saml\"\n[saml]\nsp_signing_key = \"PRIVATE\"\nsp_certificate = \"C\"");
        assert_eq!(p.options["saml"]["sp_signing_key"], "PRIVATE");
        let written = toml::to_string(&p).unwrap();
        assert!(
            !written.contains("PRIVATE") && written.contains("<redacted>"),
            "{written}"
        );
        assert!(!format!("{p:?}").contains("PRIVATE"));
    }
}
