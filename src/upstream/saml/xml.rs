//! Parsing untrusted SAML XML with libxml2, and reading it without the classic traps.

use libxml::parser::{Parser, ParserOptions};
use libxml::tree::{Document, Node, NodeType};

use super::SamlError;

pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Parses a message from an untrusted party: no DTD at all (so no entity expansion or external
/// entities), no network, no error recovery (recovery would make our tree differ from the
/// sender's), UTF-8 only.
pub fn parse_untrusted(bytes: &[u8]) -> Result<Document, SamlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SamlError::MalformedXml)?;
    if contains_ignore_case(text, "<!DOCTYPE") || contains_ignore_case(text, "<!ENTITY") {
        return Err(SamlError::DtdForbidden);
    }
    let options = ParserOptions {
        recover: false,
        no_net: true,
        no_def_dtd: true,
        ..ParserOptions::default()
    };
    let doc = Parser::default()
        .parse_string_with_options(text, options)
        .map_err(|_| SamlError::MalformedXml)?;
    if doc.get_root_element().is_none() {
        return Err(SamlError::MalformedXml);
    }
    Ok(doc)
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Is `node` the element `{ns}local`?
pub fn is(node: &Node, ns: &str, local: &str) -> bool {
    node.get_type() == Some(NodeType::ElementNode)
        && node.get_name() == local
        && node.get_namespace().is_some_and(|n| n.get_href() == ns)
}

/// Direct child elements named `{ns}local`.
pub fn children(node: &Node, ns: &str, local: &str) -> Vec<Node> {
    node.get_child_elements()
        .into_iter()
        .filter(|c| is(c, ns, local))
        .collect()
}

pub fn child(node: &Node, ns: &str, local: &str) -> Option<Node> {
    children(node, ns, local).into_iter().next()
}

/// Every element named `{ns}local` anywhere under `node` (itself included).
pub fn descendants(node: &Node, ns: &str, local: &str) -> Vec<Node> {
    let mut found = Vec::new();
    let mut stack = vec![node.clone()];
    while let Some(n) = stack.pop() {
        if is(&n, ns, local) {
            found.push(n.clone());
        }
        stack.extend(n.get_child_elements());
    }
    found
}

/// The text of a leaf element, refused when anything but text splits it. A comment inside a
/// NameID (`admin@evil.com<!---->.example.com`) makes naive readers take only the first text
/// node: CVE-2017-11427 and its family. Reading all of it would be safe too, but a signed value
/// with a comment in it is never legitimate, so refusing is clearer.
pub fn text(node: &Node) -> Result<String, SamlError> {
    let mut out = String::new();
    for c in node.get_child_nodes() {
        match c.get_type() {
            Some(NodeType::TextNode) | Some(NodeType::CDataSectionNode) => {
                out.push_str(&c.get_content())
            }
            _ => return Err(SamlError::SplitText),
        }
    }
    Ok(out.trim().to_owned())
}

/// Refuses a document where a comment or processing instruction sits beside text in one
/// element. Signed SAML values never look like that; a comment splitting a NameID is how
/// CVE-2017-11427 fooled readers that take the first text node. Run before anything is read.
pub fn reject_split_text(root: &Node) -> Result<(), SamlError> {
    let mut stack = vec![root.clone()];
    while let Some(n) = stack.pop() {
        let kids = n.get_child_nodes();
        let has_text = kids.iter().any(|c| {
            matches!(
                c.get_type(),
                Some(NodeType::TextNode) | Some(NodeType::CDataSectionNode)
            ) && !c.get_content().trim().is_empty()
        });
        let has_other = kids.iter().any(|c| {
            matches!(
                c.get_type(),
                Some(NodeType::CommentNode) | Some(NodeType::PiNode)
            )
        });
        if has_text && has_other {
            return Err(SamlError::SplitText);
        }
        stack.extend(n.get_child_elements());
    }
    Ok(())
}

/// An unqualified attribute of an element.
pub fn attr(node: &Node, name: &str) -> Option<String> {
    node.get_attribute(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtds_and_entities_are_refused_before_parsing() {
        let xxe = br#"<?xml version="1.0"?><!doctype r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert!(matches!(parse_untrusted(xxe), Err(SamlError::DtdForbidden)));
    }

    #[test]
    fn comments_inside_text_are_refused() {
        let doc = parse_untrusted(b"<r><a>x<!-- -->y</a><b>plain &amp; <![CDATA[cdata]]></b></r>")
            .unwrap();
        let root = doc.get_root_element().unwrap();
        let kids = root.get_child_elements();
        assert!(matches!(text(&kids[0]), Err(SamlError::SplitText)));
        assert_eq!(text(&kids[1]).unwrap(), "plain & cdata");
    }

    #[test]
    fn malformed_xml_is_not_recovered() {
        assert!(matches!(
            parse_untrusted(b"<r><a></r>"),
            Err(SamlError::MalformedXml)
        ));
    }
}
