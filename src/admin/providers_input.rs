//! A provider as an admin sends it (API body, or the page's form turned into one), and the one
//! validation both faces use: field syntax here, the per-kind rules in `providers::options`
//! (the same that check `[[providers]]`).

use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::admin::http::validation::{self, FieldErrors};
use crate::providers::Provider;
use crate::providers::options;
use crate::providers::repo::{ProviderWrite, SecretChange};
use crate::providers::{ProviderConfig, supported_kind};
use crate::upstream::http::UpstreamHttp;
use crate::upstream::oidc::ClaimMapping;
use crate::upstream::saml::{IdpMetadata, SamlProviderSettings, StoredSaml};
use crate::upstream::{ProviderId, ProviderKind};

/// Ids that name an API endpoint beside `/providers/{id}`.
const RESERVED_IDS: [&str; 1] = ["discover"];

/// A new provider or the new state of one. `id` and `kind` are fixed once created.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// The slug used in URLs (`/callback/{id}`): 1-64 of `a-z`, `0-9`, `-`. Required on
    /// creation, ignored on update.
    #[serde(default)]
    pub id: Option<String>,
    /// `google`, `github`, `oidc` or `saml`. Required on creation; cannot change.
    #[serde(default)]
    pub kind: Option<String>,
    /// Shown on the login page; default: the id.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Default true on creation; on update, absent keeps the current state.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Portico's client id at the provider (not for saml).
    #[serde(default)]
    pub client_id: String,
    /// Write-only; stored encrypted, never returned. On update: absent or null keeps the
    /// stored secret, `""` removes it.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// oidc (required) and google (optional override): https, or http on a loopback address.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Default: the kind's (oidc: `openid email profile`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Home-realm hints: e-mail domains sent to this provider from the login page.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Link to an existing user by verified e-mail.
    #[serde(default)]
    pub trust_email: bool,
    /// google: Workspace domains allowed (the ID token's `hd`).
    #[serde(default)]
    pub hosted_domains: Vec<String>,
    /// google: ask for a refresh token (default true).
    #[serde(default)]
    pub offline_access: Option<bool>,
    /// github: organisations (`org`) or teams (`org:team`) allowed to log in.
    #[serde(default)]
    pub allowed_orgs: Vec<String>,
    /// github: REST API base for GitHub Enterprise Server (`https://HOST/api/v3`).
    #[serde(default)]
    pub github_api_base: Option<String>,
    /// github: web base for GitHub Enterprise Server (`https://HOST`).
    #[serde(default)]
    pub github_web_base: Option<String>,
    /// oidc: which claims carry e-mail, name, picture, groups.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub claims: Option<ClaimMapping>,
    /// saml: the IdP's metadata document, pasted. Exactly one of this and the URL.
    #[serde(default)]
    pub saml_idp_metadata_xml: Option<String>,
    /// saml: where to fetch the IdP's metadata (and refresh it).
    #[serde(default)]
    pub saml_idp_metadata_url: Option<String>,
    /// saml: the `[providers.saml]` options (name_id_format, attributes, email_verified,
    /// idp_initiated…); an SP signing key is configured in portico.toml only.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub saml: Option<SamlProviderSettings>,
}

/// Trimmed, `None` when empty.
fn given(raw: &Option<String>) -> Option<String> {
    raw.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An upstream URL: absolute, https (or http on a loopback address, for local IdPs and tests),
/// without credentials, query or fragment.
pub fn upstream_url(errors: &mut FieldErrors, field: &str, raw: &str) {
    let Ok(url) = url::Url::parse(raw) else {
        errors.add(field, format!("`{raw}` is not an absolute URL"));
        return;
    };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !(url.scheme() == "https" || url.scheme() == "http" && loopback) {
        errors.add(field, format!("`{raw}` must use https"));
    } else if !url.username().is_empty() || url.password().is_some() {
        errors.add(field, "must not contain credentials");
    } else if url.fragment().is_some() {
        errors.add(field, "must not have a #fragment");
    }
}

/// A DNS name, lower-cased: labels of letters, digits and `-`, at least two of them.
fn domains(errors: &mut FieldErrors, field: &str, list: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for raw in list.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        let d = raw.to_ascii_lowercase();
        let labels: Vec<&str> = d.split('.').collect();
        let ok = d.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if ok {
            out.push(d);
        } else {
            errors.add(field, format!("`{raw}` is not a domain name"));
        }
    }
    out
}

/// RFC 6749 scope tokens: visible ASCII but `"` and `\`.
fn scopes(errors: &mut FieldErrors, list: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for raw in list.iter().flat_map(|s| s.split_whitespace()) {
        if raw
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            out.push(raw.to_owned());
        } else {
            errors.add("scopes", format!("`{raw}` is not a valid scope"));
        }
    }
    out
}

/// GitHub logins and team slugs: letters, digits, `-`, `_`, `.`; `org` or `org:team`.
fn orgs(errors: &mut FieldErrors, list: &[String]) -> Vec<String> {
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
        if ok {
            out.push(raw.to_owned());
        } else {
            errors.add(
                "allowed_orgs",
                format!("`{raw}` is not `org` or `org:team`"),
            );
        }
    }
    out
}

/// Free text an upstream gave us (a client id): bounded, no control characters.
fn opaque(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) -> String {
    let value = raw.trim();
    if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    } else if value.chars().any(char::is_control) {
        errors.add(field, "must not contain control characters");
    }
    value.to_owned()
}

impl ProviderInput {
    /// Checks every field for a new provider (`current` is `None`) or an update of `current`,
    /// naming each bad field. A SAML metadata URL that is new or changed is fetched and must
    /// parse, so a wrong one is found now rather than at the first login.
    pub async fn validate(
        &self,
        current: Option<&Provider>,
        http: &UpstreamHttp,
    ) -> Result<ProviderWrite, FieldErrors> {
        let write = self.validate_fields(current)?;
        let url = given(&self.saml_idp_metadata_url).filter(|_| write.kind == ProviderKind::Saml);
        let known = current
            .and_then(|p| StoredSaml::from_json(&p.settings).ok())
            .and_then(|s| s.metadata_url);
        if let Some(url) = url.filter(|u| known.as_ref() != Some(u)) {
            IdpMetadata::fetch(http.client(), &url)
                .await
                .map_err(|e| FieldErrors::single("saml_idp_metadata_url", e.to_string()))?;
        }
        Ok(write)
    }

    /// Everything [`Self::validate`] checks without going to the network.
    fn validate_fields(&self, current: Option<&Provider>) -> Result<ProviderWrite, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = match current {
            Some(p) => Some(p.id.clone()),
            None => {
                let raw = self.id.as_deref().unwrap_or("").trim();
                match ProviderId::parse(raw) {
                    Ok(_) if RESERVED_IDS.contains(&raw) => {
                        errors.add("id", format!("`{raw}` is reserved"));
                        None
                    }
                    Ok(id) => Some(id),
                    Err(e) => {
                        errors.add("id", e);
                        None
                    }
                }
            }
        };
        let kind = match (current, given(&self.kind)) {
            (Some(p), None) => Some(p.kind),
            (Some(p), Some(k)) if k == p.kind.as_str() => Some(p.kind),
            (Some(p), Some(_)) => {
                errors.add(
                    "kind",
                    format!(
                        "a provider's kind cannot change (it is {}); create a new one",
                        p.kind
                    ),
                );
                None
            }
            (None, None) => {
                errors.add("kind", "is required: google, github, oidc or saml");
                None
            }
            (None, Some(k)) => supported_kind(&k).map_err(|e| errors.add("kind", e)).ok(),
        };
        let display_name = match given(&self.display_name) {
            Some(name) => validation::label(&mut errors, "display_name", &name, 100),
            None => id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
        };
        let client_id = opaque(&mut errors, "client_id", &self.client_id, 255);
        let secret = match self.client_secret.as_deref() {
            None if current.is_some() => SecretChange::Keep,
            None => SecretChange::Clear,
            Some(s) if s.trim().is_empty() => SecretChange::Clear,
            Some(s) => SecretChange::Set(SecretString::from(opaque(
                &mut errors,
                "client_secret",
                s,
                1024,
            ))),
        };
        let issuer = given(&self.issuer);
        if let Some(issuer) = &issuer {
            upstream_url(&mut errors, "issuer", issuer);
        }
        let github_api_base = given(&self.github_api_base);
        let github_web_base = given(&self.github_web_base);
        let metadata_xml = given(&self.saml_idp_metadata_xml);
        let metadata_url = given(&self.saml_idp_metadata_url);
        if let Some(url) = &metadata_url {
            upstream_url(&mut errors, "saml_idp_metadata_url", url);
        }
        let scopes = self.scopes.as_deref().map(|s| scopes(&mut errors, s));
        let email_domains = domains(&mut errors, "email_domains", &self.email_domains);
        let hosted_domains = domains(&mut errors, "hosted_domains", &self.hosted_domains);
        let allowed_orgs = orgs(&mut errors, &self.allowed_orgs);
        if let Some(saml) = &self.saml {
            if kind.is_some_and(|k| k != ProviderKind::Saml) {
                errors.add("saml", "`saml` applies only to kind saml");
            } else if saml.sp_signing_key.is_some() || saml.sp_certificate.is_some() {
                errors.add(
                    "saml",
                    "an SP signing key is set in portico.toml only, never sent to the API",
                );
            }
        }
        let (Some(id), Some(kind)) = (id, kind) else {
            return Err(errors);
        };
        // The secret the kind rules see: a kept one counts as present.
        let has_secret = match &secret {
            SecretChange::Keep => current.is_some_and(Provider::has_secret),
            SecretChange::Set(_) => true,
            SecretChange::Clear => false,
        };
        let config = ProviderConfig {
            id: id.clone(),
            kind: kind.as_str().to_owned(),
            display_name: Some(display_name.clone()),
            enabled: self.enabled.unwrap_or(current.is_none_or(|p| p.enabled)),
            client_id: client_id.clone(),
            client_secret: has_secret.then(|| SecretString::from("present")),
            issuer: issuer.clone(),
            scopes: scopes.clone().filter(|s| !s.is_empty()),
            email_domains: email_domains.clone(),
            trust_email: self.trust_email,
            claims: self.claims.clone().unwrap_or_default(),
            saml_idp_metadata_xml: metadata_xml,
            saml_idp_metadata_url: metadata_url,
            saml: self.saml.clone().unwrap_or_default(),
            hosted_domains,
            offline_access: self.offline_access,
            allowed_orgs,
            github_api_base,
            github_web_base,
        };
        if kind == ProviderKind::Saml && config.issuer.is_some() {
            errors.add(
                "issuer",
                "kind saml takes no `issuer` (its IdP metadata names it)",
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let setup = options::check(&config).map_err(|e| {
            // The field is named by where the message is shown.
            let prefix = format!("{}: ", e.field);
            let message = e.message.strip_prefix(&prefix).unwrap_or(&e.message);
            FieldErrors::single(e.field, message)
        })?;
        Ok(ProviderWrite {
            id,
            kind,
            display_name,
            enabled: config.enabled,
            client_id,
            secret,
            issuer,
            scopes: setup.scopes,
            settings: setup.settings,
            email_domains,
            trust_email: self.trust_email,
        })
    }
}
