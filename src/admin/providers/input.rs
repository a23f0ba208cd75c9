//! A provider as an admin sends it (API body, or the page's form turned into one), and the one
//! validation both faces use: syntax of the fields every provider has here, then the kind's
//! rules from `upstream::kinds` (the same that check `[[providers]]`).

use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::admin::http::validation::{self, FieldErrors};
use crate::claims::ClaimRules;
use crate::claims::pipeline::check_namespaces;
use crate::providers::Provider;
use crate::providers::repo::{ProviderWrite, SecretChange};
use crate::providers::supported_kind;
use crate::upstream::ProviderId;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::kinds::{self, Entry, Invalid, Options, given};

/// Ids that name an API endpoint beside `/providers/{id}`.
const RESERVED_IDS: [&str; 1] = ["discover"];

/// A new provider or the new state of one. `id` and `kind` are fixed once created.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
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
    /// oidc (required) and google (optional override): https, or http to a loopback IP.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Default: the kind's (oidc: `openid email profile`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Upstream scopes a service may ask the user to add to the stored grant through the token
    /// broker (`GET /broker/{provider}/token?scope=…`, docs/broker.md); any other scope it asks
    /// for is refused. Not for saml. At most 50.
    #[serde(default)]
    pub incremental_scopes: Vec<String>,
    /// Home-realm hints: e-mail domains sent to this provider from the login page.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Link to an existing user by verified e-mail.
    #[serde(default)]
    pub trust_email: bool,
    /// The kind's options, as in `[[providers]]` (docs/providers/): google `hosted_domains`,
    /// `offline_access`; github `allowed_orgs`, `github_api_base`, `github_web_base`; oidc
    /// `claims`; saml `saml_idp_metadata_xml` or `saml_idp_metadata_url`, and `saml` (an SP
    /// signing key is configured in portico.toml only); every kind the claims pipeline's
    /// `group_prefix`, `group_allow`, `group_deny`, `group_rename`, `max_groups`,
    /// `static_claims`, `extra_claims` (docs/providers/claims.md). Unknown keys are refused.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub options: Options,
}

/// An upstream URL, as [`kinds::upstream_url`] allows it.
pub fn upstream_url(errors: &mut FieldErrors, field: &str, raw: &str) {
    if let Err(e) = kinds::upstream_url(raw) {
        errors.add(field, e);
    }
}

fn add(errors: &mut FieldErrors, invalid: Invalid) {
    errors.add(&invalid.field, invalid.message);
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
            errors.add(
                "scopes",
                format!(
                    "“{raw}” is not a valid scope: scopes are separated by spaces and hold no \
                     quotes or backslashes."
                ),
            );
        }
    }
    out
}

/// The written provider's group namespace against every other stored provider's.
fn namespaces(write: &ProviderWrite, others: &[Provider]) -> Result<(), FieldErrors> {
    let Some(mine) = ClaimRules::of_settings(&write.settings) else {
        return Ok(());
    };
    let theirs: Vec<(&str, ClaimRules)> = others
        .iter()
        .filter(|p| p.id != write.id)
        .filter_map(|p| Some((p.id.as_str(), ClaimRules::of_settings(&p.settings)?)))
        .collect();
    let mut all: Vec<(&str, &ClaimRules)> = vec![(write.id.as_str(), &mine)];
    all.extend(theirs.iter().map(|(id, r)| (*id, r)));
    check_namespaces(&all, Some(write.id.as_str()))
        .map_err(|clash| FieldErrors::single(clash.option, clash.message))
}

impl ProviderInput {
    /// Checks every field for a new provider (`current` is `None`) or an update of `current`,
    /// naming each bad field; then what the kind checks on the network (a new SAML metadata
    /// URL is fetched and must parse, so a wrong one is found now rather than at the first
    /// login).
    /// `others` are the stored providers: the new rules may not clash with their group
    /// namespaces (`claims::pipeline::check_namespaces`).
    pub async fn validate(
        &self,
        current: Option<&Provider>,
        others: &[Provider],
        http: &UpstreamHttp,
    ) -> Result<ProviderWrite, FieldErrors> {
        let write = self.validate_fields(current)?;
        namespaces(&write, others)?;
        kinds::find(write.kind)
            .verify(&write.settings, current.map(|p| &p.settings), http)
            .await
            .map_err(|e| FieldErrors::single(&e.field, e.message))?;
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
                        errors.add("id", format!("“{raw}” is reserved: choose another ID."));
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
        let kind = match (current, given(self.kind.as_deref())) {
            (Some(p), None) => Some(p.kind),
            (Some(p), Some(k)) if k == p.kind.as_str() => Some(p.kind),
            (Some(p), Some(_)) => {
                errors.add(
                    "kind",
                    format!(
                        "A provider's kind cannot change (this one is {}): create a new \
                         provider instead.",
                        p.kind
                    ),
                );
                None
            }
            (None, None) => {
                errors.add("kind", "Choose a kind: google, github, oidc or saml.");
                None
            }
            (None, Some(k)) => supported_kind(&k).map_err(|e| errors.add("kind", e)).ok(),
        };
        let display_name = match given(self.display_name.as_deref()) {
            Some(name) => validation::label(&mut errors, "display_name", &name, 100),
            None => id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
        };
        let client_id = validation::text(&mut errors, "client_id", &self.client_id, 255);
        let secret = match self.client_secret.as_deref() {
            None if current.is_some() => SecretChange::Keep,
            None => SecretChange::Clear,
            Some(s) if s.trim().is_empty() => SecretChange::Clear,
            Some(s) => SecretChange::Set(SecretString::from(validation::text(
                &mut errors,
                "client_secret",
                s,
                1024,
            ))),
        };
        let issuer = given(self.issuer.as_deref());
        if let Some(issuer) = &issuer {
            upstream_url(&mut errors, "issuer", issuer);
        }
        let scopes = self.scopes.as_deref().map(|s| scopes(&mut errors, s));
        let email_domains = kinds::domain_names("email_domains", &self.email_domains)
            .map_err(|e| add(&mut errors, e))
            .unwrap_or_default();
        let Some(kind) = kind else {
            kinds::misplaced(kind, &self.options)
                .into_iter()
                .for_each(|e| add(&mut errors, e));
            return Err(errors);
        };
        // A kept secret counts as present.
        let has_secret = match &secret {
            SecretChange::Keep => current.is_some_and(Provider::has_secret),
            SecretChange::Set(_) => true,
            SecretChange::Clear => false,
        };
        let entry = Entry {
            kind,
            client_id: &client_id,
            has_secret,
            issuer: issuer.as_deref(),
            scopes: scopes.as_deref().filter(|s| !s.is_empty()),
            incremental_scopes: &self.incremental_scopes,
            options: &self.options,
            from_config: false,
        };
        let checked = kinds::find(kind).check(&entry).map_err(|invalid| {
            invalid.into_iter().for_each(|e| add(&mut errors, e));
        });
        // Every field's error is told at once: the kind's rules run even when the ID is wrong.
        let (Ok(checked), Some(id)) = (checked, id) else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ProviderWrite {
            id,
            kind,
            display_name,
            enabled: self.enabled.unwrap_or(current.is_none_or(|p| p.enabled)),
            client_id,
            secret,
            issuer,
            scopes: checked.scopes,
            incremental_scopes: checked.incremental_scopes,
            settings: checked.settings,
            email_domains,
            trust_email: self.trust_email,
        })
    }
}
