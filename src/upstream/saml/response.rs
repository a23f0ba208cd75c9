//! The assertion consumer service's core: from a posted `SAMLResponse` to a verified identity.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libxml::tree::Node;

use super::config::{AttributeMapping, NAMEID_EMAIL};
use super::signature;
use super::xml::{
    NS_ASSERTION, NS_PROTOCOL, attr, child, children, descendants, is, reject_split_text, text,
};
use super::{IdpMetadata, OutstandingRequests, ReplayCache, SamlError, SpConfig};

/// Largest `SAMLResponse` form value accepted (base64 text). The HTTP layer should cap the
/// whole form a little above this too, so nothing bigger is even buffered.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// Everything a Response is checked against.
pub struct VerifyContext<'a> {
    pub sp: &'a SpConfig,
    /// Pinned IdP: expected issuer and the only certificates a signature may verify with.
    pub idp: &'a IdpMetadata,
    /// Unix seconds; `sp.clock_skew_secs` is allowed either way.
    pub now: i64,
    /// AuthnRequests we sent; the one named by `InResponseTo` is consumed.
    pub requests: &'a dyn OutstandingRequests,
    pub replay: &'a dyn ReplayCache,
}

/// The identity from a Response that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The subject as the IdP names it: the stable key for the linked identity.
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// All attributes with simple values, by name.
    pub attributes: BTreeMap<String, Vec<String>>,
    pub session_index: Option<String>,
    /// When the IdP authenticated the user (the AuthnStatement's AuthnInstant, Unix seconds).
    pub authn_instant: Option<i64>,
    pub assertion_id: String,
    /// The AuthnRequest this answers; `None` for an (allowed) IdP-initiated login.
    pub in_response_to: Option<String>,
    /// When the assertion stops being acceptable (Unix seconds, skew included).
    pub expires_at: i64,
}

/// Verifies the base64 `SAMLResponse` of an HTTP-POST to our ACS. Only after every check has
/// passed are the assertion ID remembered (replay) and the outstanding request consumed.
///
/// A Response that cannot be accepted here (it answers a request this login did not send, or
/// comes with no login to answer) is refused before its assertion ID is remembered: the same
/// Response posted twice at once (a double submit, two instances) must not let the post
/// without the login spend the assertion that the one with it needs. A Response already used
/// is named a replay first, whatever login it comes with.
pub async fn verify_response(
    saml_response: &str,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedAssertion, SamlError> {
    let verified = check_response(saml_response, ctx.sp, ctx.idp, ctx.now)?;
    let key = format!("{} {}", ctx.idp.entity_id, verified.assertion_id);
    if ctx.replay.seen(&key).await? {
        return Err(SamlError::Replayed);
    }
    if let Some(request_id) = &verified.in_response_to
        && !ctx.requests.may_answer(request_id)
    {
        return Err(SamlError::UnknownInResponseTo);
    }
    if !ctx.replay.first_use(&key, verified.expires_at).await? {
        return Err(SamlError::Replayed);
    }
    if let Some(request_id) = &verified.in_response_to
        && !ctx.requests.consume(request_id).await?
    {
        return Err(SamlError::UnknownInResponseTo);
    }
    Ok(verified)
}

/// Every check that needs no state: signature, structure, bindings and time windows.
fn check_response(
    saml_response: &str,
    sp: &SpConfig,
    idp: &IdpMetadata,
    now: i64,
) -> Result<VerifiedAssertion, SamlError> {
    if saml_response.len() > MAX_RESPONSE_BYTES {
        return Err(SamlError::TooLarge {
            limit: MAX_RESPONSE_BYTES,
        });
    }
    // IdPs wrap base64 lines; whitespace carries no data.
    let compact: String = saml_response
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD.decode(compact).map_err(|_| SamlError::NotBase64)?;
    let xml = String::from_utf8(bytes).map_err(|_| SamlError::MalformedXml)?;
    let doc = super::xml::parse_untrusted(xml.as_bytes())?;
    let response = doc.get_root_element().ok_or(SamlError::MalformedXml)?;
    if !is(&response, NS_PROTOCOL, "Response") {
        return Err(SamlError::NotAResponse);
    }

    reject_split_text(&response)?;

    // Status first: an IdP's error reply is usually unsigned and has no assertion, and the
    // admin needs its code, not "unsigned".
    check_status(&response)?;

    if !descendants(&response, NS_ASSERTION, "EncryptedAssertion").is_empty() {
        return Err(SamlError::EncryptedAssertionUnsupported);
    }
    let assertions = descendants(&response, NS_ASSERTION, "Assertion");
    let [assertion] = assertions.as_slice() else {
        return Err(SamlError::AssertionCount {
            found: assertions.len(),
        });
    };
    if children(&response, NS_ASSERTION, "Assertion").len() != 1 {
        return Err(SamlError::Missing("an Assertion directly in the Response"));
    }

    let signed = signature::verify(
        &xml,
        &doc,
        &response,
        assertion,
        &idp.signing_certs,
        sp.allow_rsa_sha1,
    )?;

    // From here on every value read is covered by a verified signature: either the Response
    // (which encloses the only Assertion) or the Assertion itself. The Response's own
    // attributes are trusted only when the Response is signed.
    if let Some(issuer) = child(&response, NS_ASSERTION, "Issuer")
        && text(&issuer)? != idp.entity_id
    {
        return Err(SamlError::IssuerMismatch);
    }
    let issuer = child(assertion, NS_ASSERTION, "Issuer").ok_or(SamlError::Missing("Issuer"))?;
    if text(&issuer)? != idp.entity_id {
        return Err(SamlError::IssuerMismatch);
    }

    match attr(&response, "Destination") {
        Some(destination) if destination != sp.acs_url => {
            return Err(SamlError::DestinationMismatch);
        }
        None if signed.response => return Err(SamlError::DestinationMismatch),
        _ => {}
    }

    let subject = child(assertion, NS_ASSERTION, "Subject").ok_or(SamlError::Missing("Subject"))?;
    let name_id_node =
        child(&subject, NS_ASSERTION, "NameID").ok_or(SamlError::Missing("NameID"))?;
    let name_id = text(&name_id_node)?;
    if name_id.is_empty() {
        return Err(SamlError::Missing("NameID"));
    }
    let confirmation = check_confirmation(&subject, sp, now)?;

    let conditions =
        child(assertion, NS_ASSERTION, "Conditions").ok_or(SamlError::Missing("Conditions"))?;
    let conditions_end = check_window(&conditions, "Conditions", sp.clock_skew_secs, now)?;
    check_audience(&conditions, &sp.entity_id)?;

    let response_irt = if signed.response {
        attr(&response, "InResponseTo")
    } else {
        None
    };
    let in_response_to = match (response_irt, confirmation.in_response_to) {
        (Some(a), Some(b)) if a != b => return Err(SamlError::InResponseToMismatch),
        (a, b) => b.or(a),
    };
    if in_response_to.is_none() && !sp.allow_idp_initiated {
        return Err(SamlError::UnsolicitedNotAllowed);
    }

    let assertion_id = attr(assertion, "ID")
        .filter(|id| !id.is_empty())
        .ok_or(SamlError::Missing("assertion ID"))?;
    let attributes = read_attributes(assertion)?;
    let name_id_format = attr(&name_id_node, "Format");
    let read = MappedAttributes::read(&sp.attributes, &attributes);
    let email = read
        .email
        .or_else(|| (name_id_format.as_deref() == Some(NAMEID_EMAIL)).then(|| name_id.clone()));
    let (name, groups) = (read.name, read.groups);
    let statement = child(assertion, NS_ASSERTION, "AuthnStatement");
    let session_index = statement.as_ref().and_then(|s| attr(s, "SessionIndex"));
    let authn_instant = statement
        .as_ref()
        .and_then(|s| attr(s, "AuthnInstant"))
        .map(|t| timestamp(&t, "AuthnInstant"))
        .transpose()?;
    let end = conditions_end.map_or(confirmation.not_on_or_after, |c| {
        c.min(confirmation.not_on_or_after)
    });

    Ok(VerifiedAssertion {
        name_id,
        name_id_format,
        email,
        name,
        groups,
        attributes,
        session_index,
        authn_instant,
        assertion_id,
        in_response_to,
        expires_at: end + sp.clock_skew_secs,
    })
}

/// What the attribute mapping reads from an assertion's attributes (a login, and the admin's
/// preview): the first present of each list of names, and the values of every groups
/// attribute (multi-valued), sorted, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedAttributes {
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

impl MappedAttributes {
    pub fn read(mapping: &AttributeMapping, attributes: &BTreeMap<String, Vec<String>>) -> Self {
        let email = first_value(attributes, &mapping.email);
        let name = first_value(attributes, &mapping.name).or_else(|| {
            let parts: Vec<String> = [&mapping.given_name, &mapping.family_name]
                .into_iter()
                .filter_map(|names| first_value(attributes, names))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        let mut groups: Vec<String> = mapping
            .groups
            .iter()
            .filter_map(|n| attributes.get(n))
            .flatten()
            .cloned()
            .collect();
        groups.sort();
        groups.dedup();
        Self {
            email,
            name,
            groups,
        }
    }
}

fn check_status(response: &Node) -> Result<(), SamlError> {
    let code = child(response, NS_PROTOCOL, "Status")
        .and_then(|s| child(&s, NS_PROTOCOL, "StatusCode"))
        .ok_or(SamlError::Missing("Status"))?;
    let value = attr(&code, "Value").unwrap_or_default();
    if value == SUCCESS {
        return Ok(());
    }
    let sub = child(&code, NS_PROTOCOL, "StatusCode").and_then(|s| attr(&s, "Value"));
    Err(SamlError::status(&value, sub.as_deref()))
}

struct Confirmation {
    in_response_to: Option<String>,
    not_on_or_after: i64,
}

/// A bearer SubjectConfirmation whose data names our ACS and is within its window. When none
/// qualifies, the first one's problem is reported.
fn check_confirmation(subject: &Node, sp: &SpConfig, now: i64) -> Result<Confirmation, SamlError> {
    let mut first_error = None;
    for sc in children(subject, NS_ASSERTION, "SubjectConfirmation") {
        if attr(&sc, "Method").as_deref() != Some(BEARER) {
            continue;
        }
        let result = (|| {
            let data = child(&sc, NS_ASSERTION, "SubjectConfirmationData")
                .ok_or(SamlError::Missing("SubjectConfirmationData"))?;
            if attr(&data, "Recipient").as_deref() != Some(sp.acs_url.as_str()) {
                return Err(SamlError::RecipientMismatch);
            }
            let end = check_window(&data, "SubjectConfirmationData", sp.clock_skew_secs, now)?
                .ok_or(SamlError::Missing("SubjectConfirmationData NotOnOrAfter"))?;
            Ok(Confirmation {
                in_response_to: attr(&data, "InResponseTo"),
                not_on_or_after: end,
            })
        })();
        match result {
            Ok(confirmation) => return Ok(confirmation),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(SamlError::NoBearerConfirmation))
}

/// Checks `NotBefore`/`NotOnOrAfter` on `node` with `skew`; returns `NotOnOrAfter` if set.
fn check_window(
    node: &Node,
    what: &'static str,
    skew: i64,
    now: i64,
) -> Result<Option<i64>, SamlError> {
    if let Some(not_before) = attr(node, "NotBefore")
        && now + skew < timestamp(&not_before, what)?
    {
        return Err(SamlError::NotYetValid);
    }
    match attr(node, "NotOnOrAfter") {
        Some(end) => {
            let end = timestamp(&end, what)?;
            if now - skew >= end {
                return Err(SamlError::Expired);
            }
            Ok(Some(end))
        }
        None => Ok(None),
    }
}

fn timestamp(raw: &str, what: &'static str) -> Result<i64, SamlError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp())
        .map_err(|_| SamlError::BadTimestamp(what))
}

/// Every AudienceRestriction must name us (they are ANDed), and there must be one.
fn check_audience(conditions: &Node, entity_id: &str) -> Result<(), SamlError> {
    let restrictions = children(conditions, NS_ASSERTION, "AudienceRestriction");
    if restrictions.is_empty() {
        return Err(SamlError::AudienceMismatch);
    }
    for restriction in restrictions {
        let mut ours = false;
        for audience in children(&restriction, NS_ASSERTION, "Audience") {
            ours |= text(&audience)? == entity_id;
        }
        if !ours {
            return Err(SamlError::AudienceMismatch);
        }
    }
    Ok(())
}

/// Attributes by name. Values with child elements (complex types) are skipped; a comment or
/// processing instruction inside a value refuses the message.
fn read_attributes(assertion: &Node) -> Result<BTreeMap<String, Vec<String>>, SamlError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for statement in children(assertion, NS_ASSERTION, "AttributeStatement") {
        for attribute in children(&statement, NS_ASSERTION, "Attribute") {
            let Some(name) = attr(&attribute, "Name") else {
                continue;
            };
            let values = out.entry(name).or_default();
            for value in children(&attribute, NS_ASSERTION, "AttributeValue") {
                if !value.get_child_elements().is_empty() {
                    continue;
                }
                let v = text(&value)?;
                if !v.is_empty() {
                    values.push(v);
                }
            }
        }
    }
    Ok(out)
}

fn first_value(attributes: &BTreeMap<String, Vec<String>>, names: &[String]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| attributes.get(n))
        .find_map(|values| values.first().cloned())
}
