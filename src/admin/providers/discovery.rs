//! "Test discovery" for OIDC providers: fetch `{issuer}/.well-known/openid-configuration`
//! through the upstream HTTP client (its timeouts and retries) and report what the issuer
//! offers, or why it could not be read. Nothing is stored.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::admin::http::validation::FieldErrors;
use crate::admin::providers::input::upstream_url;
use crate::upstream::http::{HttpError, UpstreamHttp};
use crate::upstream::kinds;

/// Discovery documents are a few KiB; anything much bigger is not one.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryRequest {
    /// The issuer to test, as it would be configured.
    pub issuer: String,
}

/// What the issuer's discovery document says.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct DiscoveryReport {
    /// Where the document was fetched.
    pub document_url: String,
    /// The document's own `issuer`.
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub end_session_endpoint: Option<String>,
    pub scopes_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// What would keep Portico from logging users in through this issuer; empty when none.
    pub problems: Vec<String>,
}

impl DiscoveryReport {
    fn from_document(document_url: String, requested: &str, doc: &Value) -> Self {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let list = |key: &str| -> Vec<String> {
            doc.get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut report = Self {
            document_url,
            issuer: text("issuer"),
            authorization_endpoint: text("authorization_endpoint"),
            token_endpoint: text("token_endpoint"),
            userinfo_endpoint: text("userinfo_endpoint"),
            jwks_uri: text("jwks_uri"),
            end_session_endpoint: text("end_session_endpoint"),
            scopes_supported: list("scopes_supported"),
            token_endpoint_auth_methods_supported: list("token_endpoint_auth_methods_supported"),
            id_token_signing_alg_values_supported: list("id_token_signing_alg_values_supported"),
            problems: Vec::new(),
        };
        // OIDC Discovery 1.0 section 4.3: the issuer must be exactly the one asked for.
        match &report.issuer {
            None => report
                .problems
                .push("the document names no `issuer`".into()),
            Some(found) if found != requested => report.problems.push(format!(
                "the document's issuer `{found}` is not `{requested}` (they must match exactly)"
            )),
            Some(_) => {}
        }
        for (name, value) in [
            ("authorization_endpoint", &report.authorization_endpoint),
            ("token_endpoint", &report.token_endpoint),
            ("jwks_uri", &report.jwks_uri),
        ] {
            if value.is_none() {
                report.problems.push(format!("no `{name}`"));
            }
        }
        let methods = &report.token_endpoint_auth_methods_supported;
        if !methods.is_empty()
            && !methods
                .iter()
                .any(|m| m == "client_secret_basic" || m == "client_secret_post")
        {
            report.problems.push(
                "the token endpoint takes neither client_secret_basic nor client_secret_post"
                    .into(),
            );
        }
        report
    }
}

/// Fetches and reads the discovery document of `raw_issuer`. Errors are about the `issuer`
/// field: a bad URL, or an issuer that does not serve a readable document.
pub async fn discover(
    http: &UpstreamHttp,
    raw_issuer: &str,
) -> Result<DiscoveryReport, FieldErrors> {
    let issuer = raw_issuer.trim();
    let mut errors = FieldErrors::new();
    if issuer.is_empty() {
        errors.add("issuer", kinds::ENTER_ISSUER);
    } else {
        upstream_url(&mut errors, "issuer", issuer);
    }
    errors.or_ok(())?;
    let fail = |message: String| FieldErrors::single("issuer", message);
    let document_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let url = reqwest::Url::parse(&document_url).map_err(|e| fail(e.to_string()))?;
    let request = reqwest::Request::new(reqwest::Method::GET, url);
    let response = http.send(request).await.map_err(|e| match e {
        HttpError::Transport { host, message } => fail(format!(
            "could not fetch the discovery document from {host}: {message}"
        )),
        HttpError::Request(message) => {
            fail(format!("could not fetch the discovery document: {message}"))
        }
        HttpError::Refused(why) => fail(format!("could not fetch the discovery document: {why}")),
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!(
            "{document_url} answered HTTP {} instead of a discovery document",
            status.as_u16()
        )));
    }
    let body = read_capped(response)
        .await
        .map_err(|m| fail(format!("{document_url}: {m}")))?;
    let doc: Value = serde_json::from_slice(&body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| fail(format!("{document_url} is not a JSON discovery document")))?;
    Ok(DiscoveryReport::from_document(document_url, issuer, &doc))
}

/// The body, refused past [`MAX_DOCUMENT_BYTES`] without reading on.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err("the document is too large".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "the answer could not be read".to_owned())?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err("the document is too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatched_issuer_and_missing_endpoints_are_problems() {
        let doc = serde_json::json!({
            "issuer": "https://other.example",
            "authorization_endpoint": "https://idp.example/authorize",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "scopes_supported": ["openid", "email"],
        });
        let r = DiscoveryReport::from_document("u".into(), "https://idp.example", &doc);
        assert_eq!(r.scopes_supported, ["openid", "email"]);
        let all = r.problems.join("\n");
        assert!(all.contains("is not `https://idp.example`"), "{all}");
        assert!(
            all.contains("no `token_endpoint`") && all.contains("no `jwks_uri`"),
            "{all}"
        );
        assert!(all.contains("client_secret_basic"), "{all}");
    }
}
