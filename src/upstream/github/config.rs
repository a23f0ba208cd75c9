//! What a GitHub provider is configured with.

use std::sync::Arc;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use super::GithubConnector;
use serde_json::{Map, Value};

use crate::claims::{self, ClaimPath, ClaimRules, RawClaims};
use crate::upstream::kinds::{self, Field, Invalid, Kind, Need, Row, Shared, Widget};
use crate::upstream::{Connector, Mapped, ProviderId, ProviderKind};

pub const GITHUB_API_BASE: &str = "https://api.github.com";
pub const GITHUB_WEB_BASE: &str = "https://github.com";

/// GitHub's own settings (the provider's kind-specific options).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubOptions {
    /// Who may log in: members of an organisation (`acme`) or of one team (`acme:platform`,
    /// by team slug). Empty lets in any GitHub user. When set, `read:org` is requested and
    /// groups are limited to the organisations named here.
    pub allowed_orgs: Vec<String>,
}

/// Kind `github`.
pub struct Github;

/// GitHub's options as kept in `settings`: the connector's plus the two base URLs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GithubSettings {
    pub allowed_orgs: Vec<String>,
    pub github_api_base: Option<String>,
    pub github_web_base: Option<String>,
    /// What becomes of the groups (organisations and `org:team`), and the claims added.
    #[serde(flatten)]
    pub rules: ClaimRules,
}

impl GithubSettings {
    /// The API and web bases; GitHub.com's where unset.
    fn bases(&self) -> Result<(BaseUrl, BaseUrl), Invalid> {
        let base = |raw: &Option<String>, default, field| {
            BaseUrl::parse_or(raw.as_deref(), default).map_err(|e| Invalid::new(field, e))
        };
        Ok((
            base(&self.github_api_base, GITHUB_API_BASE, "github_api_base")?,
            base(&self.github_web_base, GITHUB_WEB_BASE, "github_web_base")?,
        ))
    }
}

impl Kind for Github {
    type Options = GithubSettings;
    const KIND: ProviderKind = ProviderKind::Github;
    const TITLE: &'static str = "GitHub";
    const SUMMARY: &'static str = "github.com or GitHub Enterprise Server";
    const ISSUED_BY: &'static str = "GitHub";
    const CLIENT_SECRET: Need = Need::Required;
    const ISSUER: Need = Need::Refused(
        "for GitHub Enterprise Server give its web and API URLs (github_web_base, github_api_base)",
    );
    const FORM: &'static [Field] = &[
        kinds::CLIENT_ID,
        kinds::CLIENT_SECRET,
        Field::new(
            "allowed_orgs",
            "Allowed organisations",
            "org or org:team, separated by spaces; empty: any account",
            Widget::Words,
        ),
        Field::new(
            "github_web_base",
            "GitHub Enterprise web URL",
            "https://HOST; empty: github.com",
            Widget::Text,
        ),
        Field::new(
            "github_api_base",
            "GitHub Enterprise API URL",
            "https://HOST/api/v3; empty: api.github.com",
            Widget::Text,
        ),
        kinds::SCOPES,
    ];

    fn check(s: &mut GithubSettings, _from_config: bool) -> Result<(), Invalid> {
        s.allowed_orgs = orgs(&s.allowed_orgs)?;
        s.github_api_base = kinds::given(s.github_api_base.as_deref());
        s.github_web_base = kinds::given(s.github_web_base.as_deref());
        s.bases().map(|_| ())
    }

    /// `raw` is what the API said: `login`, `name`, `email`, and `groups` (organisations and
    /// `org:team`); `allowed_orgs` applies as at a login.
    fn preview(
        s: &GithubSettings,
        _provider: &ProviderId,
        raw: &Map<String, Value>,
    ) -> Result<Mapped, String> {
        let login = raw.get("login").and_then(Value::as_str).unwrap_or("user");
        let path = ClaimPath::parse("groups").expect("a claim name is a path");
        let rules: Vec<OrgRule> = s.allowed_orgs.iter().map(|o| OrgRule::parse(o)).collect();
        let groups =
            super::groups::admit(login, path.strings(raw), &rules).map_err(|e| e.to_string())?;
        let text = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Mapped {
            email: text("email").map(|e| e.to_ascii_lowercase()),
            email_verified: false,
            name: text("name").or_else(|| text("login")),
            picture: None,
            claims: claims::apply(
                &s.rules,
                RawClaims {
                    groups,
                    claims: raw,
                },
            ),
        })
    }

    fn build(
        s: GithubSettings,
        row: &Row<'_>,
        shared: &Shared<'_>,
    ) -> Result<Arc<dyn Connector>, String> {
        let (api_base, web_base) = s.bases().map_err(|e| e.to_string())?;
        let config = GithubConfig {
            id: row.id.clone(),
            client_id: row.client_id.to_owned(),
            client_secret: row.secret()?,
            scopes: row.scopes.to_vec(),
            api_base,
            web_base,
            options: GithubOptions {
                allowed_orgs: s.allowed_orgs,
            },
            rules: s.rules,
        };
        Ok(Arc::new(GithubConnector::new(config, shared.http.clone())))
    }
}

/// GitHub logins and team slugs: letters, digits, `-`, `_`, `.`; `org` or `org:team`.
fn orgs(list: &[String]) -> Result<Vec<String>, Invalid> {
    let part = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let mut out = Vec::new();
    for raw in list.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        let ok = match raw.split_once(':') {
            Some((org, team)) => part(org) && part(team),
            None => part(raw),
        };
        if !ok {
            let message = format!(
                "“{raw}” is not an organisation or organisation:team, e.g. acme or acme:platform."
            );
            return Err(Invalid::new("allowed_orgs", message));
        }
        out.push(raw.to_owned());
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct GithubConfig {
    pub id: ProviderId,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Scopes to request; empty means `read:user user:email` (plus `read:org` when
    /// `allowed_orgs` is set, which is always added then).
    pub scopes: Vec<String>,
    /// The REST API: `https://api.github.com`, or `https://HOST/api/v3` for Enterprise Server.
    pub api_base: BaseUrl,
    /// The web host with `/login/oauth/*`: `https://github.com`, or `https://HOST`.
    pub web_base: BaseUrl,
    pub options: GithubOptions,
    pub rules: ClaimRules,
}

/// An http(s) URL without query or fragment that paths are appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|_| {
            format!("Enter a full URL, e.g. https://github.example.com (not “{raw}”).")
        })?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return Err(format!("“{raw}” must be an https URL with a host name."));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!(
                "Remove the query, #fragment or credentials from “{raw}”."
            ));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// `raw` parsed, or `default` when it is unset.
    pub fn parse_or(raw: Option<&str>, default: &str) -> Result<Self, String> {
        Self::parse(raw.filter(|r| !r.trim().is_empty()).unwrap_or(default))
    }

    pub fn github_api() -> Self {
        Self(GITHUB_API_BASE.to_owned())
    }

    pub fn github_web() -> Self {
        Self(GITHUB_WEB_BASE.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The base with `path_and_query` (which starts without `/`) appended.
    pub fn join(&self, path_and_query: &str) -> Url {
        Url::parse(&format!("{}/{path_and_query}", self.0))
            .expect("a parsed base URL and a fixed path make a URL")
    }

    /// Whether `url` lies under this base: same origin, path below the base's. Pagination
    /// links are only followed there, so a token is never sent to another host.
    pub fn contains(&self, url: &Url) -> bool {
        let base = Url::parse(&self.0).expect("parsed at construction");
        url.origin() == base.origin()
            && url
                .path()
                .strip_prefix(base.path().trim_end_matches('/'))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of `allowed_orgs`: a whole organisation, or one team of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OrgRule {
    pub org: String,
    pub team: Option<String>,
}

impl OrgRule {
    pub fn parse(raw: &str) -> Self {
        match raw.trim().split_once(':') {
            Some((org, team)) => Self {
                org: org.to_owned(),
                team: Some(team.to_owned()),
            },
            None => Self {
                org: raw.trim().to_owned(),
                team: None,
            },
        }
    }
}

/// The rule as written: `org` or `org:team`, the same shape as the groups it matches.
impl std::fmt::Display for OrgRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.team {
            Some(team) => write!(f, "{}:{team}", self.org),
            None => f.write_str(&self.org),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised_and_checked() {
        let ghes = BaseUrl::parse("https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(ghes.as_str(), "https://ghe.example.com/api/v3");
        assert_eq!(
            ghes.join("user/orgs?per_page=100").as_str(),
            "https://ghe.example.com/api/v3/user/orgs?per_page=100"
        );
        assert!(BaseUrl::parse("ftp://ghe.example.com").is_err());
        assert!(BaseUrl::parse("https://ghe.example.com/?x=1").is_err());
        assert!(BaseUrl::parse("https://user:pw@ghe.example.com").is_err());
        assert_eq!(
            BaseUrl::parse_or(None, GITHUB_API_BASE).unwrap(),
            BaseUrl::github_api()
        );
    }

    #[test]
    fn only_urls_under_the_base_are_contained() {
        let ghes = BaseUrl::parse("https://ghe.example.com/api/v3").unwrap();
        let yes = Url::parse("https://ghe.example.com/api/v3/user/orgs?page=2").unwrap();
        let other_host = Url::parse("https://evil.example.com/api/v3/user/orgs").unwrap();
        let other_path = Url::parse("https://ghe.example.com/api/v30/user").unwrap();
        let other_scheme = Url::parse("http://ghe.example.com/api/v3/user").unwrap();
        assert!(ghes.contains(&yes));
        assert!(!ghes.contains(&other_host));
        assert!(!ghes.contains(&other_path));
        assert!(!ghes.contains(&other_scheme));
        let dotcom = BaseUrl::github_api();
        assert!(dotcom.contains(&Url::parse("https://api.github.com/user/teams?page=3").unwrap()));
    }

    #[test]
    fn org_rules_name_an_org_or_a_team() {
        assert_eq!(
            OrgRule::parse("acme:platform"),
            OrgRule {
                org: "acme".into(),
                team: Some("platform".into())
            }
        );
        assert_eq!(OrgRule::parse(" acme ").team, None);
    }
}
