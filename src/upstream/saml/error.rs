//! Why a SAML message or setting was refused.
//!
//! Every refusal of a Response has its own variant, so tests and the `login.failed` event can
//! tell them apart. `reason()` is short text an admin can act on; it never carries XML from the
//! message, only values we chose or short, sanitised protocol codes.

#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    // --- the POST body itself
    #[error("SAML response larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("SAML response is not valid base64")]
    NotBase64,
    #[error("SAML response contains a DTD or entity declaration")]
    DtdForbidden,
    #[error("SAML response is not well-formed XML")]
    MalformedXml,
    #[error("SAML message is not a protocol Response")]
    NotAResponse,
    #[error("IdP returned status {code}")]
    StatusNotSuccess {
        code: String,
        sub_code: Option<String>,
    },

    // --- structure and signature
    #[error("SAML response must carry exactly one assertion, found {found}")]
    AssertionCount { found: usize },
    #[error("encrypted assertions are not supported")]
    EncryptedAssertionUnsupported,
    #[error("neither the response nor the assertion is signed")]
    Unsigned,
    #[error("signature does not cover the element it is attached to")]
    SignatureReference,
    #[error("signature uses a disallowed algorithm or transform: {0}")]
    SignatureAlgorithm(&'static str),
    #[error("RSA-SHA1 signatures are not allowed for this provider")]
    Sha1NotAllowed,
    #[error("signature invalid")]
    SignatureInvalid,

    // --- bindings
    #[error("issuer mismatch")]
    IssuerMismatch,
    #[error("destination mismatch")]
    DestinationMismatch,
    #[error("recipient mismatch")]
    RecipientMismatch,
    #[error("audience mismatch")]
    AudienceMismatch,
    #[error("no bearer subject confirmation")]
    NoBearerConfirmation,
    #[error("assertion expired")]
    Expired,
    #[error("assertion not yet valid")]
    NotYetValid,
    #[error("InResponseTo does not match an outstanding request")]
    UnknownInResponseTo,
    #[error("InResponseTo differs between the response and the assertion")]
    InResponseToMismatch,
    #[error("unsolicited (IdP-initiated) response not allowed")]
    UnsolicitedNotAllowed,
    #[error("assertion replayed")]
    Replayed,
    #[error("XML comment or markup inside a text value")]
    SplitText,
    #[error("assertion is missing {0}")]
    Missing(&'static str),
    #[error("invalid timestamp in {0}")]
    BadTimestamp(&'static str),

    // --- configuration and metadata
    #[error("IdP metadata: {0}")]
    Metadata(String),
    #[error("IdP metadata could not be fetched: {0}")]
    MetadataFetch(String),
    #[error("SP signing key or certificate: {0}")]
    SigningKey(String),
    #[error("could not build the AuthnRequest: {0}")]
    Request(String),
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
}

impl SamlError {
    /// Short, admin-actionable text for `login.failed` events and error pages.
    pub fn reason(&self) -> String {
        match self {
            Self::TooLarge { .. } => "response too large".into(),
            Self::NotBase64 => "response not base64".into(),
            Self::DtdForbidden => "DTD not allowed".into(),
            Self::MalformedXml => "malformed XML".into(),
            Self::NotAResponse => "not a SAML response".into(),
            Self::StatusNotSuccess { code, sub_code } => match sub_code {
                Some(sub) => format!("IdP status {code} ({sub})"),
                None => format!("IdP status {code}"),
            },
            Self::AssertionCount { .. } => "expected exactly one assertion".into(),
            Self::EncryptedAssertionUnsupported => "encrypted assertions not supported".into(),
            Self::Unsigned => "response unsigned".into(),
            Self::SignatureReference => "signature reference mismatch".into(),
            Self::SignatureAlgorithm(what) => format!("signature algorithm not allowed ({what})"),
            Self::Sha1NotAllowed => "RSA-SHA1 not allowed".into(),
            Self::SignatureInvalid => "signature invalid".into(),
            Self::IssuerMismatch => "issuer mismatch".into(),
            Self::DestinationMismatch => "destination mismatch".into(),
            Self::RecipientMismatch => "recipient mismatch".into(),
            Self::AudienceMismatch => "audience mismatch".into(),
            Self::NoBearerConfirmation => "no bearer subject confirmation".into(),
            Self::Expired => "assertion expired".into(),
            Self::NotYetValid => "assertion not yet valid".into(),
            Self::UnknownInResponseTo => "unknown or reused InResponseTo".into(),
            Self::InResponseToMismatch => "InResponseTo mismatch".into(),
            Self::UnsolicitedNotAllowed => "IdP-initiated login not allowed".into(),
            Self::Replayed => "assertion replayed".into(),
            Self::SplitText => "comment inside a text value".into(),
            Self::Missing(what) => format!("missing {what}"),
            Self::BadTimestamp(what) => format!("invalid timestamp in {what}"),
            Self::Metadata(_) => "invalid IdP metadata".into(),
            Self::MetadataFetch(_) => "IdP metadata fetch failed".into(),
            Self::SigningKey(_) => "invalid SP signing key".into(),
            Self::Request(_) => "could not build AuthnRequest".into(),
            Self::Store(_) => "internal error".into(),
        }
    }

    /// Builds the status refusal from the IdP's codes, keeping only the last URN segment and
    /// characters that are safe to show, so a hostile message cannot inject text.
    pub(crate) fn status(code: &str, sub_code: Option<&str>) -> Self {
        Self::StatusNotSuccess {
            code: short_code(code),
            sub_code: sub_code.map(short_code),
        }
    }
}

fn short_code(urn: &str) -> String {
    let last = urn.rsplit(':').next().unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    if clean.is_empty() {
        "unknown".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_shortened_and_sanitised() {
        let e = SamlError::status(
            "urn:oasis:names:tc:SAML:2.0:status:Responder",
            Some("urn:oasis:names:tc:SAML:2.0:status:<b>AuthnFailed</b>"),
        );
        assert_eq!(e.reason(), "IdP status Responder (bAuthnFailedb)");
        assert_eq!(SamlError::status("", None).reason(), "IdP status unknown");
    }
}
