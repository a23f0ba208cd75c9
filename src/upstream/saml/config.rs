//! Per-provider service-provider settings: who we are to the IdP and how we read its assertions.

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use super::SamlError;

pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

/// One SAML provider as the SP side sees it.
#[derive(Clone)]
pub struct SpConfig {
    /// The provider slug, as in `/saml/{provider}/acs`.
    pub provider: String,
    pub entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
    /// Asked for in the AuthnRequest's NameIDPolicy and announced in SP metadata.
    pub name_id_format: String,
    pub attributes: AttributeMapping,
    /// Signs AuthnRequests (HTTP-Redirect `SigAlg` + `Signature`) when set.
    pub signing: Option<SpSigningKey>,
    /// Allowed clock difference with the IdP, applied to every time window.
    pub clock_skew_secs: i64,
    pub allow_rsa_sha1: bool,
    pub allow_idp_initiated: bool,
}

impl SpConfig {
    /// Defaults for `provider` under `issuer` (Portico's public base URL, no trailing slash).
    pub fn new(issuer: &str, provider: &str) -> Self {
        let base = format!("{}/saml/{provider}", issuer.trim_end_matches('/'));
        Self {
            provider: provider.to_owned(),
            entity_id: format!("{base}/metadata"),
            acs_url: format!("{base}/acs"),
            metadata_url: format!("{base}/metadata"),
            name_id_format: NAMEID_UNSPECIFIED.to_owned(),
            attributes: AttributeMapping::default(),
            signing: None,
            clock_skew_secs: 120,
            allow_rsa_sha1: false,
            allow_idp_initiated: false,
        }
    }
}

/// Attribute names read for each claim, first present wins. Names compare exactly (SAML
/// attribute names are URIs or plain names; both are case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeMapping {
    pub email: Vec<String>,
    pub name: Vec<String>,
    /// When no `name` attribute is sent, the name is "given family" from these.
    pub given_name: Vec<String>,
    pub family_name: Vec<String>,
    pub groups: Vec<String>,
}

impl Default for AttributeMapping {
    fn default() -> Self {
        let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        Self {
            email: owned(&[
                "email",
                "mail",
                "emailAddress",
                "urn:oid:0.9.2342.19200300.100.1.3",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            ]),
            name: owned(&[
                "name",
                "displayName",
                "urn:oid:2.16.840.1.113730.3.1.241",
                "http://schemas.microsoft.com/identity/claims/displayname",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "cn",
                "urn:oid:2.5.4.3",
            ]),
            given_name: owned(&[
                "givenName",
                "firstName",
                "urn:oid:2.5.4.42",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
            ]),
            family_name: owned(&[
                "sn",
                "surname",
                "lastName",
                "urn:oid:2.5.4.4",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
            ]),
            groups: owned(&[
                "groups",
                "memberOf",
                "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
            ]),
        }
    }
}

/// The SP's own key pair, for signed AuthnRequests and the metadata's signing KeyDescriptor.
#[derive(Clone)]
pub struct SpSigningKey {
    pub key: PKey<Private>,
    pub certificate: X509,
}

impl SpSigningKey {
    pub fn from_pem(key_pem: &[u8], certificate_pem: &[u8]) -> Result<Self, SamlError> {
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|_| SamlError::SigningKey("private key is not PEM".into()))?;
        let certificate = X509::from_pem(certificate_pem)
            .map_err(|_| SamlError::SigningKey("certificate is not PEM".into()))?;
        let public = certificate
            .public_key()
            .map_err(|_| SamlError::SigningKey("certificate has no public key".into()))?;
        if !key.public_eq(&public) {
            return Err(SamlError::SigningKey(
                "certificate does not match the private key".into(),
            ));
        }
        if key.rsa().is_err() && key.ec_key().is_err() {
            return Err(SamlError::SigningKey("only RSA and EC keys sign".into()));
        }
        Ok(Self { key, certificate })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_derive_from_the_issuer() {
        let sp = SpConfig::new("https://id.example.com/", "okta");
        assert_eq!(sp.entity_id, "https://id.example.com/saml/okta/metadata");
        assert_eq!(sp.acs_url, "https://id.example.com/saml/okta/acs");
        assert!(!sp.allow_rsa_sha1 && !sp.allow_idp_initiated);
        assert!(sp.attributes.email.iter().any(|n| n == "mail"));
    }
}
