//! Provider identifiers and kinds.

use serde::{Deserialize, Serialize};

/// A provider's slug: lower-case letters, digits and `-`, 1 to 64 characters. It appears in
/// URLs (`/callback/{id}`), so it is restricted to what needs no escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProviderId(String);

impl ProviderId {
    /// What an ID must be, as the message for a missing one says it.
    const RULE: &str = "Enter an ID: 1 to 64 lower-case letters, digits or hyphens.";

    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else if raw.is_empty() {
            Err(Self::RULE.to_owned())
        } else {
            Err(format!(
                "“{raw}” cannot be an ID: use 1 to 64 lower-case letters, digits or hyphens, \
                 not starting with a hyphen."
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        ProviderId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The provider kinds (docs/providers/); what each one is lives in its connector module, registered in
/// [`super::kinds::KINDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Oidc,
    Google,
    Github,
    Saml,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc",
            ProviderKind::Google => "google",
            ProviderKind::Github => "github",
            ProviderKind::Saml => "saml",
        }
    }

    /// Whether providers of this kind can say when they authenticated the user (an OIDC ID
    /// token's `auth_time`, a SAML AuthnInstant). GitHub's OAuth cannot: a GitHub login never
    /// proves that anyone authenticated recently.
    pub fn states_auth_time(self) -> bool {
        !matches!(self, ProviderKind::Github)
    }

    /// The registered kind named `raw`.
    pub fn parse(raw: &str) -> Option<Self> {
        super::kinds::KINDS
            .iter()
            .map(|k| k.kind())
            .find(|k| k.as_str() == raw)
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
