//! The IdP as its metadata describes it: the only source of the certificates we trust.

use std::time::Duration;

use openssl::x509::X509;
use samael::crypto::CertificateDer;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::service_provider::ServiceProvider;

use super::SamlError;

/// Metadata documents are small; anything bigger is not an IdP's metadata.
const MAX_METADATA_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Where AuthnRequests go (HTTP-Redirect binding).
    pub sso_url: String,
    /// Pinned signing certificates. Several are listed while an IdP rolls its key over; a
    /// signature from any of them is accepted.
    pub signing_certs: Vec<CertificateDer>,
}

impl IdpMetadata {
    /// Parses an `EntityDescriptor` with an `IDPSSODescriptor`.
    pub fn parse(xml: &str) -> Result<Self, SamlError> {
        if xml.len() > MAX_METADATA_BYTES {
            return Err(SamlError::Metadata("document too large".into()));
        }
        // The same DTD refusal as for messages: admins paste this, but URLs can be hostile.
        super::xml::parse_untrusted(xml.as_bytes())
            .map_err(|e| SamlError::Metadata(e.to_string()))?;
        let descriptor: EntityDescriptor = xml
            .parse()
            .map_err(|_| SamlError::Metadata("not a SAML EntityDescriptor".into()))?;
        let entity_id = descriptor
            .entity_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| SamlError::Metadata("no entityID".into()))?;
        if descriptor
            .idp_sso_descriptors
            .as_ref()
            .is_none_or(|d| d.is_empty())
        {
            return Err(SamlError::Metadata("no IDPSSODescriptor".into()));
        }
        let sp = ServiceProvider {
            idp_metadata: descriptor,
            ..ServiceProvider::default()
        };
        let sso_url = sp
            .sso_binding_location(HTTP_REDIRECT_BINDING)
            .ok_or_else(|| {
                SamlError::Metadata("no SingleSignOnService with the HTTP-Redirect binding".into())
            })?;
        let signing_certs = sp
            .idp_signing_certs()
            .map_err(|_| SamlError::Metadata("a signing certificate is not valid base64".into()))?
            .unwrap_or_default();
        if signing_certs.is_empty() {
            return Err(SamlError::Metadata("no signing certificate".into()));
        }
        for cert in &signing_certs {
            X509::from_der(cert.der_data())
                .map_err(|_| SamlError::Metadata("a signing certificate is not X.509".into()))?;
        }
        Ok(Self {
            entity_id,
            sso_url,
            signing_certs,
        })
    }

    /// Fetches and parses metadata from `url`. Refreshing on a schedule is the caller's job;
    /// on failure keep the last good metadata.
    pub async fn fetch(client: &reqwest::Client, url: &str) -> Result<Self, SamlError> {
        let fail = |e: reqwest::Error| SamlError::MetadataFetch(e.without_url().to_string());
        let response = client
            .get(url)
            .timeout(Duration::from_secs(15))
            .send()
            .await
            .map_err(fail)?
            .error_for_status()
            .map_err(fail)?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
        {
            return Err(SamlError::MetadataFetch("document too large".into()));
        }
        let body = response.text().await.map_err(fail)?;
        Self::parse(&body)
    }
}
