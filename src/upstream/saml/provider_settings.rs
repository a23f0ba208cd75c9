//! Kind `saml`: its options (the IdP metadata and the `[providers.saml]` table of
//! portico.toml), kept in the provider row's `settings` JSON, and what the admin is shown to
//! give the IdP. The SP private key is the exception: it is stored only sealed, in
//! `providers.saml_sp_key`, and is set in portico.toml only.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::connector::mapped_claims;
use super::{
    AttributeMapping, IdpMetadata, MappedAttributes, NAMEID_EMAIL, NAMEID_PERSISTENT,
    NAMEID_UNSPECIFIED, SamlConnector, SpConfig, SpSigningKey,
};
use crate::claims::ClaimRules;
use crate::upstream::http::UpstreamHttp;
use crate::upstream::kinds::{
    self, Field, Invalid, Kind, Need, Row, Shared, Shown, ShownValue, Widget,
};
use crate::upstream::{Connector, IdpInitiatedTarget, Mapped, ProviderId, ProviderKind};

const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

/// Kind `saml`.
pub struct Saml;

/// The options of kind `saml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SamlOptions {
    /// The IdP's metadata document, pasted. Exactly one of this and the URL.
    pub saml_idp_metadata_xml: Option<String>,
    /// Where to fetch the IdP's metadata (and refresh it).
    pub saml_idp_metadata_url: Option<String>,
    /// The `[providers.saml]` table.
    pub saml: SamlProviderSettings,
    /// What becomes of the groups attribute's values, and the claims added.
    #[serde(flatten)]
    pub rules: ClaimRules,
}

impl Kind for Saml {
    type Options = SamlOptions;
    const KIND: ProviderKind = ProviderKind::Saml;
    const TITLE: &'static str = "SAML 2.0";
    const SUMMARY: &'static str = "Okta, Entra ID, ADFS, Shibboleth… by IdP metadata";
    const CLIENT_ID: Need = Need::Optional;
    const ISSUER: Need = Need::Refused("its IdP metadata names it");
    const INCREMENTAL_SCOPES: bool = false;
    const FORM: &'static [Field] = &[
        Field::new(
            "saml_idp_metadata_xml",
            "IdP metadata XML",
            "paste the IdP's metadata, or give its URL below",
            Widget::Textarea,
        ),
        Field::new(
            "saml_idp_metadata_url",
            "IdP metadata URL",
            "fetched and refreshed; https",
            Widget::Text,
        ),
        Field::new(
            "saml.name_id_format",
            "NameID format",
            "persistent, email, unspecified, transient or a URN",
            Widget::Text,
        ),
        Field::new(
            "saml.email_verified",
            "The IdP verifies e-mail addresses: mark the addresses it asserts verified",
            "",
            Widget::Checkbox,
        ),
    ];

    fn check(o: &mut SamlOptions, from_config: bool) -> Result<(), Invalid> {
        o.saml_idp_metadata_xml = kinds::given(o.saml_idp_metadata_xml.as_deref());
        o.saml_idp_metadata_url = kinds::given(o.saml_idp_metadata_url.as_deref());
        let saml = |e: String| Invalid::new("saml", e);
        match (&o.saml_idp_metadata_xml, &o.saml_idp_metadata_url) {
            (Some(xml), None) => IdpMetadata::parse(xml)
                .map(|_| ())
                .map_err(|e| Invalid::new("saml_idp_metadata_xml", e.to_string()))?,
            (None, Some(url)) => {
                kinds::upstream_url(url).map_err(|e| Invalid::new("saml_idp_metadata_url", e))?
            }
            _ => Err(Invalid::new(
                "saml_idp_metadata_xml",
                "Paste the IdP's metadata XML or enter its metadata URL: exactly one of the two \
                 (saml_idp_metadata_xml, saml_idp_metadata_url).",
            ))?,
        }
        let s = &o.saml;
        if !from_config && (s.sp_signing_key.is_some() || s.sp_certificate.is_some()) {
            return Err(saml(
                "an SP signing key is set in portico.toml only, never sent to the API".into(),
            ));
        }
        s.name_id_format_urn().map_err(saml)?;
        s.signing_key().map_err(saml)?;
        if let Some(target) = &s.idp_initiated
            && (target.client_id.is_empty() || target.redirect_uri.is_empty())
        {
            return Err(saml(
                "saml.idp_initiated needs client_id and redirect_uri".into(),
            ));
        }
        if s.max_session_secs == 0 || s.metadata_refresh_secs < 60 {
            return Err(saml(
                "saml.max_session_secs must be at least 1 and saml.metadata_refresh_secs at \
                 least 60"
                    .into(),
            ));
        }
        Ok(())
    }

    fn take_key(o: &mut SamlOptions) -> Option<SecretString> {
        o.saml.sp_signing_key.take()
    }

    /// A metadata URL that is new or changed is fetched and must parse, so a wrong one is
    /// found when saved rather than at the first login.
    fn verify<'a>(
        o: &'a SamlOptions,
        before: Option<&'a SamlOptions>,
        http: &'a UpstreamHttp,
    ) -> BoxFuture<'a, Result<(), Invalid>> {
        Box::pin(async move {
            let known = before.and_then(|b| b.saml_idp_metadata_url.as_ref());
            match &o.saml_idp_metadata_url {
                Some(url) if known != Some(url) => IdpMetadata::fetch(http.client(), url)
                    .await
                    .map(|_| ())
                    .map_err(|e| Invalid::new("saml_idp_metadata_url", e.to_string())),
                _ => Ok(()),
            }
        })
    }

    fn shown(o: &SamlOptions, issuer: &str, id: &str) -> Shown {
        let sp = o.saml.sp(issuer, id);
        Shown {
            key: "saml_sp",
            title: "For the IdP",
            intro: "Give these to the identity provider's administrator (or let them import the \
                    metadata URL).",
            values: vec![
                ShownValue {
                    key: "entity_id",
                    id: "sp-entity-id",
                    label: "SP entity ID",
                    value: sp.entity_id,
                },
                ShownValue {
                    key: "acs_url",
                    id: "sp-acs-url",
                    label: "ACS URL (HTTP-POST)",
                    value: sp.acs_url,
                },
                ShownValue {
                    key: "metadata_url",
                    id: "sp-metadata-url",
                    label: "SP metadata URL",
                    value: sp.metadata_url,
                },
            ],
        }
    }

    /// Only when the admin said its IdP verifies addresses (`saml.email_verified`).
    fn vouches_for_email(o: &SamlOptions) -> bool {
        o.saml.email_verified
    }

    /// Whether metadata was pasted, not the document.
    fn audit(options: &mut Map<String, Value>) {
        let pasted = options.remove("saml_idp_metadata_xml").is_some();
        options.insert("saml_idp_metadata_pasted".into(), pasted.into());
    }

    /// `raw` is the assertion's attributes: name to a list of values (or one value).
    fn preview(
        o: &SamlOptions,
        _provider: &ProviderId,
        raw: &Map<String, Value>,
    ) -> Result<Mapped, String> {
        let attributes: BTreeMap<String, Vec<String>> = raw
            .iter()
            .map(|(name, values)| {
                let values = match values {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .take(crate::claims::pipeline::MAX_INPUT_GROUPS)
                        .map(str::to_owned)
                        .collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => Vec::new(),
                };
                (name.clone(), values)
            })
            .collect();
        let read = MappedAttributes::read(&o.saml.attributes.mapping(), &attributes);
        Ok(Mapped {
            email: read.email,
            email_verified: o.saml.email_verified,
            name: read.name,
            picture: None,
            claims: mapped_claims(&o.rules, &attributes, read.groups),
        })
    }

    fn build(
        o: SamlOptions,
        row: &Row<'_>,
        shared: &Shared<'_>,
    ) -> Result<Arc<dyn Connector>, String> {
        let ctx = shared.saml.ok_or_else(|| {
            format!(
                "provider `{}` is of kind saml, but SAML is not enabled in this process",
                row.id
            )
        })?;
        let connector = SamlConnector::new(row.id.clone(), o, row.key.clone(), ctx.clone())
            .map_err(|e| format!("provider `{}`: {e}", row.id))?;
        Ok(Arc::new(connector))
    }
}

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
    pub idp_initiated: Option<IdpInitiatedTarget>,
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

impl SamlProviderSettings {
    /// The SP of provider `id` under `issuer`, with its entity ID as configured.
    pub fn sp(&self, issuer: &str, id: &str) -> SpConfig {
        let mut sp = SpConfig::new(issuer, id);
        if let Some(entity_id) = self.entity_id.clone().filter(|e| !e.is_empty()) {
            sp.entity_id = entity_id;
        }
        sp
    }

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
                    "The NameID format (name_id_format) “{other}” is not one of persistent, \
                     email, unspecified, transient, or a urn:… URN."
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
