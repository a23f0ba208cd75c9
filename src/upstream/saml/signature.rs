//! XML signature checks on a Response: which element is signed, with what, and by whom.
//!
//! xmlsec (through samael's `reduce_xml_to_signed`, in its pre-digest mode) does the
//! cryptography: it verifies every `Signature` in the document with the pinned certificates
//! only. samael's context has no keys
//! manager and sets the verification key itself, so `KeyInfo` in the message is never read.
//! What xmlsec does not decide is *what* a valid signature means, so before it runs we require
//! the only shape we accept: enveloped signatures, at most one on the Response and one on the
//! Assertion, each with a single Reference whose URI is `#` + its parent's `ID`, the standard
//! transforms only, and algorithms from our allow-list. Together with "exactly one Assertion in
//! the document" this makes the signed element the one we read, which closes signature wrapping.

use libxml::tree::{Document, Node};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};

use super::SamlError;
use super::xml::{NS_DSIG, child, children, descendants};

const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

const STRONG: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

const TRANSFORMS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
];

/// Which of the two elements carry a verified signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    pub response: bool,
    pub assertion: bool,
}

/// Checks the signatures of `doc` (whose root is `response`, whose single Assertion is
/// `assertion`) against `certs`. `xml` is the exact text `doc` was parsed from.
pub fn verify(
    xml: &str,
    doc: &Document,
    response: &Node,
    assertion: &Node,
    certs: &[CertificateDer],
    allow_rsa_sha1: bool,
) -> Result<Signed, SamlError> {
    let root = doc.get_root_element().ok_or(SamlError::MalformedXml)?;
    let all = descendants(&root, NS_DSIG, "Signature");
    if all.is_empty() {
        return Err(SamlError::Unsigned);
    }
    let on_response = children(response, NS_DSIG, "Signature");
    let on_assertion = children(assertion, NS_DSIG, "Signature");
    if on_response.len() > 1
        || on_assertion.len() > 1
        || on_response.len() + on_assertion.len() != all.len()
    {
        // A signature anywhere else, or two on one element, is a wrapping attempt.
        return Err(SamlError::SignatureReference);
    }
    let mut sha1 = false;
    for (sig, parent) in on_response
        .iter()
        .map(|s| (s, response))
        .chain(on_assertion.iter().map(|s| (s, assertion)))
    {
        sha1 |= check_shape(sig, parent)?;
    }
    if sha1 && !allow_rsa_sha1 {
        return Err(SamlError::Sha1NotAllowed);
    }
    if certs.is_empty() {
        return Err(SamlError::SignatureInvalid);
    }
    // With SHA-1 allowed, samael's list cannot express it; our own check above is the list.
    let allowed = if allow_rsa_sha1 { None } else { Some(STRONG) };
    // PreDigest: every signature is verified as in the other modes, and samael then returns
    // the signed bytes without re-rooting its copy of the document. Its other modes, when the
    // signed element is not the root (an Assertion-only signature), detach the old root and
    // never free it: the whole unsigned Response leaked on every such post (found by the
    // saml_response fuzz target under LeakSanitizer). We read values from our own parse of
    // `xml`, never from samael's output, and the shape checks above pin what is signed.
    XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        certs,
        ReduceMode::PreDigest,
        allowed,
    )
    .map_err(|_| SamlError::SignatureInvalid)?;
    Ok(Signed {
        response: !on_response.is_empty(),
        assertion: !on_assertion.is_empty(),
    })
}

/// The signature's SignedInfo must reference its parent and nothing else. Returns whether it
/// uses SHA-1 anywhere.
fn check_shape(sig: &Node, parent: &Node) -> Result<bool, SamlError> {
    let signed_info = child(sig, NS_DSIG, "SignedInfo").ok_or(SamlError::SignatureReference)?;
    let references = children(&signed_info, NS_DSIG, "Reference");
    let [reference] = references.as_slice() else {
        return Err(SamlError::SignatureReference);
    };
    let id = parent.get_attribute("ID").unwrap_or_default();
    if id.is_empty() || reference.get_attribute("URI").as_deref() != Some(&format!("#{id}")) {
        return Err(SamlError::SignatureReference);
    }
    if let Some(transforms) = child(reference, NS_DSIG, "Transforms") {
        for t in transforms.get_child_elements() {
            let alg = t.get_attribute("Algorithm").unwrap_or_default();
            if !TRANSFORMS.contains(&alg.as_str()) {
                return Err(SamlError::SignatureAlgorithm("transform"));
            }
        }
    }
    let method = child(&signed_info, NS_DSIG, "SignatureMethod")
        .and_then(|m| m.get_attribute("Algorithm"))
        .unwrap_or_default();
    let digest = child(reference, NS_DSIG, "DigestMethod")
        .and_then(|m| m.get_attribute("Algorithm"))
        .unwrap_or_default();
    let strong_method = STRONG.iter().any(|a| a.signature_uri() == method);
    let strong_digest = STRONG.iter().any(|a| a.digest_uri() == digest);
    if !(strong_method || method == RSA_SHA1) {
        return Err(SamlError::SignatureAlgorithm("signature method"));
    }
    if !(strong_digest || digest == SHA1) {
        return Err(SamlError::SignatureAlgorithm("digest method"));
    }
    Ok(method == RSA_SHA1 || digest == SHA1)
}
