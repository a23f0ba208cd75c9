//! SP-initiated login: an AuthnRequest sent by the HTTP-Redirect binding.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use samael::metadata::HTTP_POST_BINDING;
use samael::schema::{AuthnRequest, Issuer, NameIdPolicy};
use samael::traits::ToXml;
use url::Url;
use url::form_urlencoded::byte_serialize;

use super::{IdpMetadata, SamlError, SpConfig};

pub const SIG_ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const SIG_ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

/// A request ready to send. Store `id` as outstanding (single use, short-lived) before
/// redirecting the browser to `url`; the Response names it in `InResponseTo`.
#[derive(Debug, Clone)]
pub struct RedirectRequest {
    pub id: String,
    pub url: Url,
}

/// Builds the AuthnRequest for `idp` and encodes it for HTTP-Redirect. `relay_state` is the
/// opaque handle of the pending authorization (never a URL); it comes back with the Response.
/// `force_authn` asks the IdP to authenticate the user again rather than use its session
/// (`prompt=login`, `max_age`).
pub fn redirect_request(
    sp: &SpConfig,
    idp: &IdpMetadata,
    relay_state: &str,
    force_authn: bool,
) -> Result<RedirectRequest, SamlError> {
    // 128 random bits; an XML ID must not start with a digit.
    let id = format!("_{}", uuid::Uuid::new_v4().simple());
    let request = AuthnRequest {
        id: id.clone(),
        version: "2.0".into(),
        issue_instant: Utc::now(),
        destination: Some(idp.sso_url.clone()),
        assertion_consumer_service_url: Some(sp.acs_url.clone()),
        protocol_binding: Some(HTTP_POST_BINDING.into()),
        force_authn: force_authn.then_some(true),
        issuer: Some(Issuer {
            value: Some(sp.entity_id.clone()),
            ..Issuer::default()
        }),
        name_id_policy: Some(NameIdPolicy {
            format: Some(sp.name_id_format.clone()),
            allow_create: Some(true),
            ..NameIdPolicy::default()
        }),
        ..AuthnRequest::default()
    };
    let xml = request
        .to_string()
        .map_err(|e| SamlError::Request(format!("{e:?}")))?;
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
    deflater
        .write_all(xml.as_bytes())
        .map_err(|e| SamlError::Request(e.to_string()))?;
    let deflated = deflater
        .finish()
        .map_err(|e| SamlError::Request(e.to_string()))?;

    // The signed string is exactly `SAMLRequest=..&RelayState=..&SigAlg=..` (bindings 3.4.4.1),
    // without any query the IdP's own SSO URL carries (Google's has `?idpid=`).
    let mut query = format!("SAMLRequest={}", encode(&STANDARD.encode(deflated)));
    if !relay_state.is_empty() {
        query.push_str(&format!("&RelayState={}", encode(relay_state)));
    }
    if let Some(signing) = &sp.signing {
        let (alg, digest) = if signing.key.rsa().is_ok() {
            (SIG_ALG_RSA_SHA256, MessageDigest::sha256())
        } else {
            (SIG_ALG_ECDSA_SHA256, MessageDigest::sha256())
        };
        query.push_str(&format!("&SigAlg={}", encode(alg)));
        let signature = Signer::new(digest, &signing.key)
            .and_then(|mut s| {
                s.update(query.as_bytes())?;
                s.sign_to_vec()
            })
            .map_err(|e| SamlError::SigningKey(e.to_string()))?;
        query.push_str(&format!(
            "&Signature={}",
            encode(&STANDARD.encode(signature))
        ));
    }

    let mut url =
        Url::parse(&idp.sso_url).map_err(|_| SamlError::Metadata("SSO URL is not a URL".into()))?;
    let full = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{query}"),
        _ => query,
    };
    url.set_query(Some(&full));
    Ok(RedirectRequest { id, url })
}

fn encode(value: &str) -> String {
    byte_serialize(value.as_bytes()).collect()
}
