//! Why an upstream login or refresh failed, in words an administrator can act on: the
//! `reason` of a `login.failed` event.

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    /// The provider sent the user back with an error (the user declined, or the provider
    /// refused the request).
    #[error("the provider returned `{error}`{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("the callback carried no authorization code")]
    MissingCode,
    /// Metadata, JWKS or an endpoint could not be reached, or answered with a server error.
    #[error("the provider is unreachable: {0}")]
    Unavailable(String),
    /// The provider's discovery document or configuration does not fit.
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
    #[error("the code exchange failed: {0}")]
    TokenExchange(String),
    /// The ID token failed validation (signature, issuer, audience, expiry, nonce...).
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
    #[error("the userinfo request failed: {0}")]
    UserInfo(String),
    #[error("the provider did not supply the `{0}` claim")]
    MissingClaim(String),
    /// The upstream grant is gone (revoked or expired): the user must log in again.
    #[error("the upstream grant is no longer valid; the user must log in again")]
    InvalidGrant,
    /// A policy of this provider's configuration refused the identity (domain, organisation).
    #[error("the login was refused by policy: {0}")]
    Refused(String),
    /// A SAML Response was refused; the text is `SamlError::reason()` (never XML).
    #[error("{0}")]
    SamlResponse(String),
}

impl UpstreamError {
    /// The text recorded as `reason` in `login.failed`.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}
