//! The JWTs Portico issues: ID tokens (OIDC Core 2) and access tokens (RFC 9068).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::scope::Scope;
use crate::keys::jwt::{self, Expect, JwtError, JwtType};
use crate::keys::{KeyRing, KeyRingError, SigningAlg};
use crate::state::AppState;
use crate::users::User;

/// RFC 9068 access token claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// A new access token id: a UUIDv7, whose first 48 bits are the millisecond it was minted, so
/// that "sign out everywhere" can end exactly the tokens issued before it (`oidc::liveness`).
pub fn new_jti() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The millisecond `jti` was minted, for a jti from [`new_jti`].
pub fn jti_minted_ms(jti: &str) -> Option<i64> {
    let id = uuid::Uuid::parse_str(jti).ok()?;
    if id.get_version() != Some(uuid::Version::SortRand) {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
}

/// ID token claims; the profile claims appear only when the scopes grant them.
#[derive(Debug, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    pub azp: String,
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// Claims by scope: `email` gives email/email_verified, `profile` name/picture, `groups` groups.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProfileClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The claims the user's provider adds (`static_claims`, `extra_claims`), whatever the
    /// scope: flattened beside the others, so that a step that selects claims per client can
    /// filter the final object by name. Never a reserved name (`claims::pipeline::RESERVED`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ProfileClaims {
    pub fn for_scope(user: &User, scope: &Scope) -> Self {
        let email = scope.contains("email") && user.email.is_some();
        let profile = scope.contains("profile");
        Self {
            email: if email { user.email.clone() } else { None },
            email_verified: email.then_some(user.email_verified),
            name: if profile { user.name.clone() } else { None },
            picture: if profile { user.picture.clone() } else { None },
            groups: scope.contains("groups").then(|| user.groups.clone()),
            extra: user.extra_claims.clone(),
        }
    }
}

/// `at_hash` (OIDC Core 3.1.3.6): the left half of the access token's hash under the hash of
/// the ID token's algorithm; Ed25519 hashes with SHA-512.
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => {
            ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes())
        }
        SigningAlg::EdDSA => ring::digest::digest(&ring::digest::SHA512, access_token.as_bytes()),
    };
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// Verifies a Portico access token (`typ: at+jwt`, from this issuer); without `unexpired`, an
/// expired one passes too.
pub async fn verify_access(
    state: &AppState,
    token: &str,
    unexpired: bool,
) -> Result<AccessClaims, JwtError> {
    let expect = Expect {
        issuer: state.settings.server.issuer.as_str(),
        audience: None,
        typ: JwtType::AccessToken,
        require_unexpired: unexpired,
    };
    state.keys.verify(token, &expect).await
}

pub fn sign_access(
    keys: &KeyRing,
    alg: SigningAlg,
    claims: &AccessClaims,
) -> Result<String, KeyRingError> {
    Ok(jwt::encode(
        &*keys.signer(alg)?,
        JwtType::AccessToken,
        claims,
    ))
}

pub fn sign_id(keys: &KeyRing, alg: SigningAlg, claims: &IdClaims) -> Result<String, KeyRingError> {
    Ok(jwt::encode(&*keys.signer(alg)?, JwtType::Jwt, claims))
}
