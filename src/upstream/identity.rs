//! What a successful upstream login yields, and what a claim set maps to (a login's, or one an
//! admin pastes into the preview).

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ProviderId;
use crate::claims::MappedClaims;

/// An identity at one provider: it maps to a Portico user through `(provider, subject)`.
/// Serialised without its tokens (a SAML login's, kept sealed between the ACS and the browser's
/// completion step, has none).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamIdentity {
    pub provider: ProviderId,
    /// The provider's stable identifier for the user (never the e-mail).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for `email`; only then may it link accounts.
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub groups: Vec<String>,
    /// Claims of the provider's own (`static_claims`, `extra_claims`), by name; never a
    /// reserved name (`crate::claims::pipeline::RESERVED`).
    #[serde(default)]
    pub extra_claims: Map<String, Value>,
    /// When the provider authenticated the user (Unix seconds), when it says: a SAML
    /// AuthnInstant, an ID token's `auth_time`. Without it, Portico's login time stands.
    pub auth_time: Option<i64>,
    /// Upstream tokens, when the provider issued them.
    #[serde(skip)]
    pub tokens: Option<UpstreamTokens>,
}

/// Tokens the provider issued to Portico. Stored only sealed.
#[derive(Debug, Clone)]
pub struct UpstreamTokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub scope: Option<String>,
}

/// What a claim set maps to: the identity's attributes, and the pipeline's output.
#[derive(Debug, Clone, Serialize)]
pub struct Mapped {
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    #[serde(flatten)]
    pub claims: MappedClaims,
}

impl Mapped {
    /// The identity of `subject` with these attributes.
    pub fn identity(
        self,
        provider: ProviderId,
        subject: String,
        tokens: Option<UpstreamTokens>,
    ) -> UpstreamIdentity {
        // A login's (the preview never makes an identity): what the rules cut is logged.
        self.claims.warn(provider.as_str());
        UpstreamIdentity {
            provider,
            subject,
            email: self.email,
            email_verified: self.email_verified,
            name: self.name,
            picture: self.picture,
            groups: self.claims.groups,
            extra_claims: self.claims.extra_claims,
            auth_time: None,
            tokens,
        }
    }
}
