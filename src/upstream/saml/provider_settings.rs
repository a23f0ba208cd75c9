//! A SAML provider's settings: the `[providers.saml]` table of portico.toml, kept in the
//! provider row's `settings` JSON. The SP private key is the exception: it is stored only
//! sealed, in `providers.saml_sp_key`.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    AttributeMapping, IdpMetadata, NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_UNSPECIFIED,
    SpSigningKey,
};

const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlProviderSettings {
    /// Our entity ID at the IdP; default `{issuer}/saml/{provider}/metadata`.
    pub entity_id: Option<String>,
    /// The NameID format asked for: `persistent`, `email`, `unspecified`, `transient` or a URN.
    pub name_id_format: String,
    /// Attribute names to read instead of the defaults, per claim.
    pub attributes: AttributeOverrides,
    /// PEM private key that signs AuthnRequests (with `sp_certificate`); optional.
    #[serde(
        deserialize_with = "crate::crypto::secret_serde::optional",
        serialize_with = "crate::crypto::secret_serde::redacted"
    )]
    pub sp_signing_key: Option<SecretString>,
    /// PEM certificate of `sp_signing_key`, published in the SP metadata.
    pub sp_certificate: Option<String>,
    /// Allowed clock difference with the IdP on every time window.
    pub clock_skew_secs: u32,
    /// Accept RSA-SHA1 signatures from this IdP (refused by default).
    pub allow_rsa_sha1: bool,
    /// The IdP verifies the addresses it asserts: mark them verified (off by default). Even
    /// then, an address links accounts only when the provider is trusted for e-mail
    /// (`trust_email`).
    pub email_verified: bool,
    /// IdP-initiated (unsolicited) logins: refused unless this names where they land.
    pub idp_initiated: Option<IdpInitiatedSettings>,
    /// Downstream refresh tokens of a login through this provider work this long after the
    /// SAML login; then the user must sign in again (SAML has no upstream refresh).
    pub max_session_secs: u64,
    /// How often metadata from `saml_idp_metadata_url` is fetched again.
    pub metadata_refresh_secs: u64,
}

impl Default for SamlProviderSettings {
    fn default() -> Self {
        Self {
            entity_id: None,
            name_id_format: "unspecified".into(),
            attributes: AttributeOverrides::default(),
            sp_signing_key: None,
            sp_certificate: None,
            clock_skew_secs: 120,
            allow_rsa_sha1: false,
            email_verified: false,
            idp_initiated: None,
            max_session_secs: 8 * 3600,
            metadata_refresh_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeOverrides {
    pub email: Option<Vec<String>>,
    pub name: Option<Vec<String>>,
    pub given_name: Option<Vec<String>>,
    pub family_name: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
}

impl AttributeOverrides {
    /// The defaults with these overrides applied.
    pub fn mapping(&self) -> AttributeMapping {
        let mut m = AttributeMapping::default();
        let set = |target: &mut Vec<String>, over: &Option<Vec<String>>| {
            if let Some(names) = over {
                target.clone_from(names);
            }
        };
        set(&mut m.email, &self.email);
        set(&mut m.name, &self.name);
        set(&mut m.given_name, &self.given_name);
        set(&mut m.family_name, &self.family_name);
        set(&mut m.groups, &self.groups);
        m
    }
}

/// Where IdP-initiated logins land: a registered client and one of its redirect URIs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdpInitiatedSettings {
    pub client_id: String,
    pub redirect_uri: String,
    #[serde(default = "default_scope")]
    pub scope: String,
}

fn default_scope() -> String {
    "openid email profile".into()
}

impl SamlProviderSettings {
    /// The NameID format URN.
    pub fn name_id_format_urn(&self) -> Result<String, String> {
        Ok(match self.name_id_format.as_str() {
            "persistent" => NAMEID_PERSISTENT.into(),
            "email" | "emailAddress" => NAMEID_EMAIL.into(),
            "unspecified" => NAMEID_UNSPECIFIED.into(),
            "transient" => NAMEID_TRANSIENT.into(),
            urn if urn.starts_with("urn:") => urn.into(),
            other => {
                return Err(format!(
                    "name_id_format `{other}` is not persistent, email, unspecified, transient \
                     or a URN"
                ));
            }
        })
    }

    /// The SP key pair, when one is configured.
    pub fn signing_key(&self) -> Result<Option<SpSigningKey>, String> {
        match (&self.sp_signing_key, &self.sp_certificate) {
            (None, None) => Ok(None),
            (Some(key), Some(cert)) => {
                SpSigningKey::from_pem(key.expose_secret().as_bytes(), cert.as_bytes())
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            _ => Err("sp_signing_key and sp_certificate go together".into()),
        }
    }

    /// The copy kept in the provider row: everything but the private key.
    pub fn without_key(&self) -> Self {
        Self {
            sp_signing_key: None,
            ..self.clone()
        }
    }
}

/// Checks a `[[providers]]` entry of kind saml, so a bad one stops the start with its name.
pub fn validate(
    xml: Option<&str>,
    url: Option<&str>,
    settings: &SamlProviderSettings,
) -> Result<(), String> {
    match (
        xml.filter(|x| !x.trim().is_empty()),
        url.filter(|u| !u.is_empty()),
    ) {
        (Some(xml), None) => {
            IdpMetadata::parse(xml).map_err(|e| format!("saml_idp_metadata_xml: {e}"))?;
        }
        (None, Some(url)) => {
            let parsed = url::Url::parse(url)
                .map_err(|_| "saml_idp_metadata_url is not a URL".to_owned())?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err("saml_idp_metadata_url must be http(s)".into());
            }
        }
        _ => {
            return Err(
                "kind saml needs exactly one of saml_idp_metadata_xml and saml_idp_metadata_url"
                    .into(),
            );
        }
    }
    settings.name_id_format_urn()?;
    settings.signing_key()?;
    if let Some(target) = &settings.idp_initiated
        && (target.client_id.is_empty() || target.redirect_uri.is_empty())
    {
        return Err("saml.idp_initiated needs client_id and redirect_uri".into());
    }
    if settings.max_session_secs == 0 || settings.metadata_refresh_secs < 60 {
        return Err(
            "saml.max_session_secs must be at least 1 and saml.metadata_refresh_secs at least 60"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name() {
        let over = AttributeOverrides {
            email: Some(vec!["workEmail".into()]),
            ..AttributeOverrides::default()
        };
        let m = over.mapping();
        assert_eq!(m.email, vec!["workEmail".to_owned()]);
        assert_eq!(m.groups, AttributeMapping::default().groups);
    }

    #[test]
    fn short_name_id_formats_expand() {
        let mut s = SamlProviderSettings::default();
        assert_eq!(s.name_id_format_urn().unwrap(), NAMEID_UNSPECIFIED);
        s.name_id_format = "persistent".into();
        assert_eq!(s.name_id_format_urn().unwrap(), NAMEID_PERSISTENT);
        s.name_id_format = "email".into();
        assert_eq!(s.name_id_format_urn().unwrap(), NAMEID_EMAIL);
        s.name_id_format = "bogus".into();
        assert!(s.name_id_format_urn().is_err());
    }
}
