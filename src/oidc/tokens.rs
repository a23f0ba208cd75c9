//! The JWTs Portico issues: ID tokens (OIDC Core 2) and access tokens (RFC 9068), and the user
//! claims that ID tokens, userinfo and introspection carry.
//!
//! User claims are made in one place, [`user_claims`]: the claims the scopes give, as one JSON
//! object, then the client's rules (`crate::claims::selection`: its group filter on `groups`,
//! its claim list on the whole object). Every answer that carries user claims takes them from
//! there, so that a client sees the same claims in its ID token (code and refresh grants), at
//! userinfo and at introspection, as the client is set now. The access token carries no user
//! claims (RFC 9068 leaves them optional; Portico puts none in it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::scope::Scope;
use crate::claims::pipeline::is_reserved;
use crate::claims::{ClaimSelection, GroupFilter};
use crate::clients::Client;
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
    /// From [`user_claims`].
    #[serde(flatten)]
    pub profile: UserClaims,
}

/// The user claims of one answer, as a JSON object (flattened beside the protocol claims).
pub type UserClaims = Map<String, Value>;

/// The user claims `client` receives of `user` under `scope`: what the scopes give, narrowed
/// by the client's group filter and claim list. The one source of user claims for ID tokens,
/// userinfo and introspection.
pub fn user_claims(user: &User, scope: &Scope, client: &Client) -> UserClaims {
    released(user, scope, client.claims.as_ref(), &client.group_filter)
}

/// The scope claims of `user` as one JSON object, with `selection` and `filter` applied.
fn released(
    user: &User,
    scope: &Scope,
    selection: Option<&ClaimSelection>,
    filter: &GroupFilter,
) -> UserClaims {
    let mut claims = match serde_json::to_value(ProfileClaims::for_scope(user, scope)) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    crate::claims::selection::release(&mut claims, selection, filter);
    claims
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
    /// The claims the user's provider adds (`static_claims`, `extra_claims`), under the
    /// `profile` scope only (OIDC Core 5.4 releases profile-like claims there; an
    /// `openid`-only client gets none): flattened beside the others, so that a step that
    /// selects claims per client can filter the final object by name. A reserved name
    /// (`claims::pipeline::RESERVED`, in any case) is dropped here too, whatever was stored:
    /// the pipeline refuses them, this keeps a stored row from ever overriding `sub`.
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
            extra: if profile {
                user.extra_claims
                    .iter()
                    .filter(|(name, _)| !is_reserved(name))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            } else {
                Map::new()
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice() -> User {
        User {
            id: "u1".into(),
            email: Some("alice@corp.example".into()),
            email_verified: true,
            email_verified_by: None,
            name: Some("Alice".into()),
            picture: None,
            groups: ["eng-web", "eng-api", "sales", "admin"]
                .map(str::to_owned)
                .to_vec(),
            disabled: false,
            tokens_revoked_at_ms: None,
            created_at: 0,
            updated_at: 0,
            last_login_at: None,
            extra_claims: json!({ "department": "engineering", "sub": "root", "Email": "x@evil",
                                  "active": true })
            .as_object()
            .cloned()
            .unwrap(),
        }
    }

    fn claims_of(selection: Option<&ClaimSelection>, filter: &GroupFilter, scope: &str) -> Value {
        let scope = Scope::parse(scope).unwrap();
        Value::Object(released(&alice(), &scope, selection, filter))
    }

    #[test]
    fn user_claims_follow_the_scopes_then_the_clients_filter_and_list() {
        let all = "openid profile email groups";
        let open = GroupFilter::default();
        assert_eq!(
            claims_of(None, &open, all)["groups"],
            json!(["eng-web", "eng-api", "sales", "admin"])
        );
        let eng = GroupFilter::parse(&["eng-*".into()], &[]).unwrap();
        let narrowed = claims_of(None, &eng, all);
        assert_eq!(narrowed["groups"], json!(["eng-web", "eng-api"]));
        assert_eq!(narrowed["name"], "Alice");
        // A provider's static or extra claim goes through the same selection.
        assert_eq!(narrowed["department"], "engineering");
        let with_department =
            ClaimSelection::parse(&["email".into(), "department".into()]).unwrap();
        assert_eq!(
            claims_of(Some(&with_department), &eng, all),
            json!({ "email": "alice@corp.example", "department": "engineering" })
        );

        let list = ClaimSelection::parse(&["email".into(), "name".into()]).unwrap();
        assert_eq!(
            claims_of(Some(&list), &eng, all),
            json!({ "email": "alice@corp.example", "name": "Alice" })
        );
        // The list never adds what the scopes do not give.
        assert_eq!(
            claims_of(Some(&list), &eng, "openid email"),
            json!({ "email": "alice@corp.example" })
        );
    }

    #[test]
    fn provider_claims_need_the_profile_scope_and_never_take_a_reserved_name() {
        let open = GroupFilter::default();
        assert_eq!(claims_of(None, &open, "openid"), json!({}));
        assert_eq!(
            claims_of(None, &open, "openid email"),
            json!({ "email": "alice@corp.example", "email_verified": true })
        );
        let profile = claims_of(None, &open, "openid profile");
        assert_eq!(profile["department"], "engineering");
        // Stored `sub`, `Email` (any case), `active` never come out.
        for name in ["sub", "Email", "active"] {
            assert!(profile.get(name).is_none(), "{profile}");
        }
    }
}
