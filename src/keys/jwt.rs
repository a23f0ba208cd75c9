//! Compact JWS: signing Portico's own tokens, and verifying them with a strict allow-list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SigningAlg, SigningKey};

/// The `typ` header: ID tokens are plain JWTs, access tokens `at+jwt` (RFC 9068 section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtType {
    Jwt,
    AccessToken,
}

impl JwtType {
    fn header_value(self) -> &'static str {
        match self {
            JwtType::Jwt => "JWT",
            JwtType::AccessToken => "at+jwt",
        }
    }

    fn accepts(self, typ: Option<&str>) -> bool {
        match self {
            // Plain JWTs may omit `typ`; an access token presented as an ID token must not pass.
            JwtType::Jwt => typ.is_none_or(|t| t.eq_ignore_ascii_case("JWT")),
            JwtType::AccessToken => typ.is_some_and(|t| {
                t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
            }),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's type is not the one expected here")]
    WrongType,
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Signs `claims` as a compact JWS with `key`.
pub fn encode<C: Serialize>(key: &SigningKey, typ: JwtType, claims: &C) -> String {
    // kid is base64url and alg/typ are fixed strings: no JSON escaping is needed.
    let header = format!(
        r#"{{"alg":"{}","kid":"{}","typ":"{}"}}"#,
        key.alg().as_str(),
        key.kid(),
        typ.header_value()
    );
    let payload = serde_json::to_vec(claims).expect("claims serialise to JSON");
    let mut token = String::with_capacity(header.len() * 4 / 3 + payload.len() * 4 / 3 + 400);
    URL_SAFE_NO_PAD.encode_string(header.as_bytes(), &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    token
}

/// What a verified token must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    /// `None` skips the audience check (the caller checks `aud` itself).
    pub audience: Option<&'a str>,
    pub typ: JwtType,
    /// False only where an expired token is still meaningful (`id_token_hint` at logout).
    pub require_unexpired: bool,
}

/// The header fields that pick the verification key, after the algorithm allow-list.
pub(crate) fn key_id(token: &str) -> Result<(String, SigningAlg, Option<String>), JwtError> {
    // decode_header refuses `alg: none` and unknown algorithms outright.
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
    let alg = match header.alg {
        jsonwebtoken::Algorithm::RS256 => SigningAlg::RS256,
        jsonwebtoken::Algorithm::ES256 => SigningAlg::ES256,
        jsonwebtoken::Algorithm::EdDSA => SigningAlg::EdDSA,
        _ => return Err(JwtError::AlgorithmNotAllowed),
    };
    let kid = header.kid.ok_or(JwtError::UnknownKey)?;
    Ok((kid, alg, header.typ))
}

/// Verifies signature and claims with the key's own algorithm as the only one allowed:
/// `header_alg` (from [`key_id`]) must be the key's.
pub(crate) fn decode<C: DeserializeOwned>(
    token: &str,
    header_alg: SigningAlg,
    typ: Option<&str>,
    key_alg: SigningAlg,
    key: &DecodingKey,
    expect: &Expect<'_>,
) -> Result<C, JwtError> {
    if header_alg != key_alg {
        return Err(JwtError::AlgorithmNotAllowed);
    }
    if !expect.typ.accepts(typ) {
        return Err(JwtError::WrongType);
    }
    let mut validation = Validation::new(key_alg.jsonwebtoken());
    validation.leeway = 30;
    validation.set_issuer(&[expect.issuer]);
    validation.validate_nbf = true;
    match expect.audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    if expect.require_unexpired {
        validation.set_required_spec_claims(&["exp", "iss"]);
    } else {
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss"]);
    }
    jsonwebtoken::decode::<C>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::InvalidAlgorithm => JwtError::AlgorithmNotAllowed,
            other => JwtError::Invalid(format!("{other:?}")),
        })
}
