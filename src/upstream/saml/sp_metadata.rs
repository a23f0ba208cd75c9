//! Our SP metadata, served at `GET /saml/{provider}/metadata` for the IdP admin to import.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::metadata::HTTP_POST_BINDING;

use super::{SamlError, SpConfig};

/// The `EntityDescriptor` for `sp`: entity ID, the POST ACS, the NameID format, and the signing
/// certificate when AuthnRequests are signed.
pub fn sp_metadata_xml(sp: &SpConfig) -> Result<String, SamlError> {
    let key_descriptor = match &sp.signing {
        Some(signing) => {
            let der = signing
                .certificate
                .to_der()
                .map_err(|e| SamlError::SigningKey(e.to_string()))?;
            format!(
                concat!(
                    r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
                    "<ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data>",
                    "</ds:KeyInfo></md:KeyDescriptor>"
                ),
                STANDARD.encode(der)
            )
        }
        None => String::new(),
    };
    Ok(format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">"#,
            r#"<md:SPSSODescriptor AuthnRequestsSigned="{signed}" WantAssertionsSigned="true" "#,
            r#"protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            "{keys}",
            "<md:NameIDFormat>{format}</md:NameIDFormat>",
            r#"<md:AssertionConsumerService Binding="{binding}" Location="{acs}" index="0" isDefault="true"/>"#,
            "</md:SPSSODescriptor></md:EntityDescriptor>"
        ),
        entity = escape(&sp.entity_id),
        signed = sp.signing.is_some(),
        keys = key_descriptor,
        format = escape(&sp.name_id_format),
        binding = HTTP_POST_BINDING,
        acs = escape(&sp.acs_url),
    ))
}

/// Escapes text for an XML attribute or element.
fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
