//! Kind-specific provider options: what each kind accepts, how it is validated, and how it is
//! kept in the row's `settings` JSON. The one place that checks a provider's configuration, so
//! that `[[providers]]` and the admin API refuse the same things with the same words.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ProviderConfig;
use crate::upstream::ProviderKind;
use crate::upstream::github::{BaseUrl, GITHUB_API_BASE, GITHUB_WEB_BASE, GithubOptions};
use crate::upstream::google::GoogleOptions;
use crate::upstream::oidc::ClaimMapping;

/// GitHub's options as kept in `settings`: the connector's plus the two base URLs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubSettings {
    pub allowed_orgs: Vec<String>,
    pub github_api_base: Option<String>,
    pub github_web_base: Option<String>,
}

impl GithubSettings {
    pub fn options(&self) -> GithubOptions {
        GithubOptions {
            allowed_orgs: self.allowed_orgs.clone(),
        }
    }

    pub fn api_base(&self) -> Result<BaseUrl, String> {
        BaseUrl::parse_or(self.github_api_base.as_deref(), GITHUB_API_BASE)
            .map_err(|e| format!("github_api_base: {e}"))
    }

    pub fn web_base(&self) -> Result<BaseUrl, String> {
        BaseUrl::parse_or(self.github_web_base.as_deref(), GITHUB_WEB_BASE)
            .map_err(|e| format!("github_web_base: {e}"))
    }
}

/// A provider entry checked and turned into what its row stores.
#[derive(Debug, Clone)]
pub struct ProviderSetup {
    pub kind: ProviderKind,
    /// The row's `scopes`; empty lets the connector's default apply.
    pub scopes: Vec<String>,
    pub settings: Value,
}

/// What is wrong with a provider entry, and the field it is about (the admin API and form
/// show it next to that field; `[[providers]]` prefixes the provider's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// Checks `p` for its kind and returns what its row stores. A field of another kind is an
/// error, not silently ignored: a `hosted_domains` on a GitHub provider would gate nothing.
pub fn setup(p: &ProviderConfig) -> Result<ProviderSetup, String> {
    check(p).map_err(|e| format!("provider `{}`: {}", p.id, e.message))
}

/// [`setup`] with the offending field named.
pub fn check(p: &ProviderConfig) -> Result<ProviderSetup, Invalid> {
    let kind = super::supported_kind(&p.kind).map_err(|e| invalid("kind", e))?;
    if kind != ProviderKind::Saml && p.client_id.trim().is_empty() {
        return Err(invalid("client_id", "needs `client_id`"));
    }
    let foreign = |field: &'static str, set: bool, owner: &str| -> Result<(), Invalid> {
        if set {
            Err(invalid(
                field,
                format!("`{field}` applies only to kind {owner}"),
            ))
        } else {
            Ok(())
        }
    };
    let is = |k: ProviderKind| kind == k;
    foreign(
        "hosted_domains",
        !p.hosted_domains.is_empty() && !is(ProviderKind::Google),
        "google",
    )?;
    foreign(
        "offline_access",
        p.offline_access.is_some() && !is(ProviderKind::Google),
        "google",
    )?;
    foreign(
        "allowed_orgs",
        !p.allowed_orgs.is_empty() && !is(ProviderKind::Github),
        "github",
    )?;
    foreign(
        "github_api_base",
        p.github_api_base.is_some() && !is(ProviderKind::Github),
        "github",
    )?;
    foreign(
        "github_web_base",
        p.github_web_base.is_some() && !is(ProviderKind::Github),
        "github",
    )?;
    foreign(
        "claims",
        p.claims != ClaimMapping::default() && !is(ProviderKind::Oidc),
        "oidc",
    )?;
    foreign(
        "saml_idp_metadata_xml",
        p.saml_idp_metadata_xml.is_some() && !is(ProviderKind::Saml),
        "saml",
    )?;
    foreign(
        "saml_idp_metadata_url",
        p.saml_idp_metadata_url.is_some() && !is(ProviderKind::Saml),
        "saml",
    )?;
    let needs_secret = || {
        if p.client_secret.is_none() {
            Err(invalid(
                "client_secret",
                format!("kind {kind} needs `client_secret`"),
            ))
        } else {
            Ok(())
        }
    };
    let (default_scopes, settings): (&[&str], Value) = match kind {
        ProviderKind::Oidc => {
            if p.issuer.as_deref().is_none_or(|i| i.trim().is_empty()) {
                return Err(invalid("issuer", "kind oidc needs `issuer`"));
            }
            (
                &["openid", "email", "profile"],
                serde_json::json!({ "claims": p.claims }),
            )
        }
        ProviderKind::Google => {
            needs_secret()?;
            let options = GoogleOptions {
                hosted_domains: trimmed(&p.hosted_domains),
                offline_access: p
                    .offline_access
                    .unwrap_or(GoogleOptions::default().offline_access),
            };
            (
                &[],
                serde_json::to_value(options).expect("options serialise"),
            )
        }
        ProviderKind::Github => {
            needs_secret()?;
            if p.issuer.is_some() {
                return Err(invalid(
                    "issuer",
                    "kind github takes no `issuer` (set github_api_base and github_web_base \
                     for GitHub Enterprise Server)",
                ));
            }
            let settings = GithubSettings {
                allowed_orgs: trimmed(&p.allowed_orgs),
                github_api_base: p.github_api_base.clone(),
                github_web_base: p.github_web_base.clone(),
            };
            settings
                .api_base()
                .map_err(|e| invalid("github_api_base", e))?;
            settings
                .web_base()
                .map_err(|e| invalid("github_web_base", e))?;
            (
                &[],
                serde_json::to_value(settings).expect("options serialise"),
            )
        }
        ProviderKind::Saml => {
            crate::upstream::saml::validate_provider(
                p.saml_idp_metadata_xml.as_deref(),
                p.saml_idp_metadata_url.as_deref(),
                &p.saml,
            )
            .map_err(|e| invalid(saml_field(&e), e))?;
            (&[], super::saml::settings_json(p))
        }
    };
    let scopes = p
        .scopes
        .clone()
        .unwrap_or_else(|| default_scopes.iter().map(|s| (*s).to_owned()).collect());
    Ok(ProviderSetup {
        kind,
        scopes,
        settings,
    })
}

/// The field a SAML check's message is about.
fn saml_field(message: &str) -> &'static str {
    if message.starts_with("saml_idp_metadata_url") {
        "saml_idp_metadata_url"
    } else if message.starts_with("saml_idp_metadata_xml") || message.starts_with("kind saml") {
        "saml_idp_metadata_xml"
    } else {
        "saml"
    }
}

fn trimmed(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The kind's options read back from a row's `settings`; a row written by [`setup`] always
/// parses, anything else is reported rather than guessed.
pub fn from_settings<T: for<'de> Deserialize<'de> + Default>(
    settings: &Value,
    provider: &str,
) -> Result<T, String> {
    if settings.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(settings.clone())
        .map_err(|e| format!("provider `{provider}` has unreadable settings: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn kind_options_land_in_settings_and_read_back() {
        let google = setup(&entry(
            "kind = \"google\"\nclient_secret = \"s\"\nhosted_domains = [\" example.com \"]\n\
             offline_access = false",
        ))
        .unwrap();
        let options: GoogleOptions = from_settings(&google.settings, "p").unwrap();
        assert_eq!(options.hosted_domains, ["example.com"]);
        assert!(!options.offline_access);

        let github = setup(&entry(
            "kind = \"github\"\nclient_secret = \"s\"\nallowed_orgs = [\"acme:platform\"]\n\
             github_api_base = \"https://ghe.example/api/v3/\"\n\
             github_web_base = \"https://ghe.example\"",
        ))
        .unwrap();
        let settings: GithubSettings = from_settings(&github.settings, "p").unwrap();
        assert_eq!(settings.options().allowed_orgs, ["acme:platform"]);
        assert_eq!(
            settings.api_base().unwrap().as_str(),
            "https://ghe.example/api/v3"
        );
        let dotcom: GithubSettings = from_settings(&Value::Null, "p").unwrap();
        assert_eq!(dotcom.web_base().unwrap().as_str(), GITHUB_WEB_BASE);
    }

    #[test]
    fn wrong_or_misplaced_fields_are_refused_with_the_field_named() {
        let cases = [
            ("kind = \"oidc\"", "needs `issuer`"),
            ("kind = \"google\"", "needs `client_secret`"),
            ("kind = \"github\"", "needs `client_secret`"),
            (
                "kind = \"github\"\nclient_secret = \"s\"\nhosted_domains = [\"a.example\"]",
                "`hosted_domains` applies only to kind google",
            ),
            (
                "kind = \"oidc\"\nissuer = \"https://i.example\"\nallowed_orgs = [\"acme\"]",
                "`allowed_orgs` applies only to kind github",
            ),
            (
                "kind = \"google\"\nclient_secret = \"s\"\ngithub_api_base = \"https://x.example\"",
                "`github_api_base` applies only to kind github",
            ),
            (
                "kind = \"github\"\nclient_secret = \"s\"\ngithub_web_base = \"ftp://x.example\"",
                "github_web_base",
            ),
            (
                "kind = \"github\"\nclient_secret = \"s\"\nissuer = \"https://github.com\"",
                "takes no `issuer`",
            ),
        ];
        for (body, expected) in cases {
            let err = setup(&entry(body)).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
            assert!(err.starts_with("provider `p`"), "{err}");
        }
    }
}
