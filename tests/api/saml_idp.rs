//! A test SAML IdP: its own RSA key and self-signed certificate, real XML signed by xmlsec
//! (through samael's signing), and its metadata served over HTTP like a real IdP's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::SecondsFormat;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};
use samael::crypto::{CryptoProvider, XmlSec};

pub const SSO_URL: &str = "https://idp.test/sso/saml";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RsaSha256,
    RsaSha1,
}

/// A key pair and certificate, as an IdP (or an attacker) holds them.
pub struct KeyPair {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl KeyPair {
    pub fn generate(common_name: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", common_name).unwrap();
        let name = name.build();
        let mut builder = X509::builder().unwrap();
        builder.set_version(2).unwrap();
        builder
            .set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        builder
            .set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        builder
            .set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        Self {
            key,
            cert: builder.build(),
        }
    }

    pub fn cert_b64(&self) -> String {
        STANDARD.encode(self.cert.to_der().unwrap())
    }

    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().unwrap()
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }

    /// Signs the first `ds:Signature` template in `xml` (document order) with xmlsec.
    pub fn sign(&self, xml: &str) -> String {
        let signed = XmlSec::sign_xml(xml, &self.key.private_key_to_der().unwrap()).unwrap();
        strip_declaration(&signed)
    }
}

pub fn strip_declaration(xml: &str) -> String {
    let xml = xml.trim_start();
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim_start().to_owned(),
        None => xml.to_owned(),
    }
}

/// An enveloped-signature template referencing `#id`; KeyInfo carries the signer's own
/// certificate, as real IdPs do (and as an attacker would).
pub fn signature_template(id: &str, alg: Alg, cert_b64: &str) -> String {
    let (method, digest) = match alg {
        Alg::RsaSha256 => (
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2001/04/xmlenc#sha256",
        ),
        Alg::RsaSha1 => (
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        ),
    };
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{method}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##
    )
}

/// What goes into one Response; `Claims::valid` gives a correct one, tests break one field.
#[derive(Clone)]
pub struct Claims {
    pub response_id: String,
    pub assertion_id: String,
    pub issuer: String,
    pub destination: Option<String>,
    pub recipient: String,
    pub audience: String,
    pub in_response_to: Option<String>,
    pub not_before: i64,
    pub not_on_or_after: i64,
    /// Inserted as XML, so tests can put markup in it.
    pub name_id_xml: String,
    pub name_id_format: String,
    pub status: String,
    pub sub_status: Option<String>,
    pub alg: Alg,
    /// When the IdP says the user authenticated (the AuthnStatement's AuthnInstant).
    pub authn_instant: i64,
    /// The `mail` attribute.
    pub email: String,
}

impl Claims {
    pub fn valid(
        issuer: &str,
        acs: &str,
        audience: &str,
        in_response_to: Option<&str>,
        now: i64,
    ) -> Self {
        Self {
            response_id: format!("_r{}", uuid::Uuid::new_v4().simple()),
            assertion_id: format!("_a{}", uuid::Uuid::new_v4().simple()),
            issuer: issuer.into(),
            destination: Some(acs.into()),
            recipient: acs.into(),
            audience: audience.into(),
            in_response_to: in_response_to.map(Into::into),
            not_before: now - 60,
            not_on_or_after: now + 300,
            name_id_xml: "00u1abcd".into(),
            name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into(),
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".into(),
            sub_status: None,
            alg: Alg::RsaSha256,
            authn_instant: now,
            email: "ada@example.com".into(),
        }
    }
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_attr(name: &str, value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|v| format!(r#" {name}="{v}""#))
        .unwrap_or_default()
}

fn template_for(signer: Option<&KeyPair>, id: &str, alg: Alg) -> String {
    signer
        .map(|k| signature_template(id, alg, &k.cert_b64()))
        .unwrap_or_default()
}

fn sign_with(signer: Option<&KeyPair>, xml: String) -> String {
    match signer {
        Some(k) => k.sign(&xml),
        None => xml,
    }
}

/// The Assertion element, with a signature template when `signer` is given (then signed).
pub fn assertion(c: &Claims, signer: Option<&KeyPair>) -> String {
    let irt = opt_attr("InResponseTo", &c.in_response_to);
    let sig = template_for(signer, &c.assertion_id, c.alg);
    let xml = format!(
        r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{aid}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{issuer}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="{fmt}">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData{irt} NotOnOrAfter="{noa}" Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{noa}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{authn}" SessionIndex="_s42"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="mail"><saml:AttributeValue>{email}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="http://schemas.microsoft.com/identity/claims/displayname"><saml:AttributeValue>Ada Lovelace</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups"><saml:AttributeValue>engineering</saml:AttributeValue><saml:AttributeValue>admins</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
        aid = c.assertion_id,
        now = time(c.not_before + 60),
        issuer = c.issuer,
        fmt = c.name_id_format,
        name_id = c.name_id_xml,
        noa = time(c.not_on_or_after),
        nb = time(c.not_before),
        recipient = c.recipient,
        audience = c.audience,
        authn = time(c.authn_instant),
        email = c.email,
    );
    sign_with(signer, xml)
}

/// The Response around `body` (usually one `assertion(..)`), signed when `signer` is given.
pub fn response(c: &Claims, body: &str, signer: Option<&KeyPair>) -> String {
    let destination = opt_attr("Destination", &c.destination);
    let irt = opt_attr("InResponseTo", &c.in_response_to);
    let sig = template_for(signer, &c.response_id, c.alg);
    let sub = c
        .sub_status
        .as_ref()
        .map(|s| format!(r#"<samlp:StatusCode Value="{s}"/>"#))
        .unwrap_or_default();
    let xml = format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{rid}" Version="2.0" IssueInstant="{now}"{destination}{irt}><saml:Issuer>{issuer}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value="{status}">{sub}</samlp:StatusCode></samlp:Status>{body}</samlp:Response>"#,
        rid = c.response_id,
        now = time(c.not_before + 60),
        issuer = c.issuer,
        status = c.status,
    );
    sign_with(signer, xml)
}

pub fn b64(xml: &str) -> String {
    STANDARD.encode(xml)
}

/// IdP metadata listing `certs` (several during a key rollover).
pub fn metadata_xml(entity_id: &str, certs: &[&KeyPair]) -> String {
    let keys: String = certs
        .iter()
        .map(|k| {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
                k.cert_b64()
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}"><md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{SSO_URL}/post"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{SSO_URL}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

/// Serves `body` at `/metadata` on a real HTTP server (port 0); returns its URL.
pub async fn serve_metadata(body: String) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/metadata",
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/samlmetadata+xml")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}/metadata")
}
