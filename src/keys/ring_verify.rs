//! jsonwebtoken's crypto provider, all ring: it verifies RS256, ES256 and EdDSA and does
//! nothing else.
//!
//! jsonwebtoken 12 needs a crypto backend; its own two are `rust_crypto` (whose RSA is the
//! pure-Rust `rsa` crate, not constant-time: RUSTSEC-2023-0071) and `aws_lc_rs` (a long C
//! build). Portico enables neither and installs this one. Verification is on the hot path
//! (every `/userinfo` and `/introspect`), and ring does it in a fraction of the time
//! `rust_crypto` took (docs/BENCHMARKS.md). Claims validation stays jsonwebtoken's; only the
//! signature check is ours. Portico signs with ring directly (`keys::jwt::encode`), never
//! through jsonwebtoken, so the signer factory refuses, and of the JWK helpers only the
//! thumbprint digest is implemented: the others need a private key or a DER public key, which
//! Portico never hands to jsonwebtoken. Nothing here panics.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::signature::{Error, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: refuse_signing,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(unsupported()),
        rsa_pub_components_from_public_key: |_| Err(unsupported()),
        ec_pub_components_from_private_key: |_, _| Err(unsupported()),
        ed_pub_components_from_private_key: |_, _| Err(unsupported()),
        compute_digest,
    },
};

/// Makes this provider jsonwebtoken's process default. Idempotent; call before the first
/// verification.
pub fn install() {
    let _ = PROVIDER.install_default();
}

/// Whether jsonwebtoken's process default is this provider (and not one another crate
/// installed first).
pub fn is_installed() -> bool {
    CryptoProvider::try_get_default().is_some_and(|p| std::ptr::eq(p, &PROVIDER))
}

fn unsupported() -> jsonwebtoken::errors::Error {
    ErrorKind::Provider("not supported by Portico's jsonwebtoken provider".into()).into()
}

/// Portico's tokens are signed with ring in `keys::jwt::encode`, not through jsonwebtoken.
fn refuse_signing(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(unsupported())
}

/// For `Jwk::thumbprint` (RFC 7638).
fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(ring::digest::digest(alg, data).as_ref().to_vec())
}

enum RingKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec(Vec<u8>),
    Ed(Vec<u8>),
}

struct RingVerifier {
    alg: Algorithm,
    key: RingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
        let outcome = match &self.key {
            RingKey::Rsa { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, msg, signature)
            }
            RingKey::Ec(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(msg, signature)
            }
            RingKey::Ed(public) => UnparsedPublicKey::new(&ED25519, public).verify(msg, signature),
        };
        outcome.map_err(|_| Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let ring_key = match (alg, key.family(), key.kind()) {
        (Algorithm::RS256, AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            RingKey::Rsa {
                n: n.clone(),
                e: e.clone(),
            }
        }
        (Algorithm::ES256, AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            RingKey::Ec(point.clone())
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(public)) => {
            RingKey::Ed(public.clone())
        }
        (Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA, _, _) => {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        // Portico's allow-list (`keys::jwt`) never lets another algorithm get this far.
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: ring_key,
    }))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Validation;
    use serde_json::{Value, json};

    use super::*;
    use crate::keys::jwt::{self, JwtType};
    use crate::keys::{GeneratedKey, SigningAlg};

    #[test]
    fn ring_verifies_what_portico_signs_and_refuses_tampering() {
        install();
        for alg in SigningAlg::ALL {
            let generated = GeneratedKey::generate(alg).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(generated.public_jwk.clone()).unwrap();
            let key = DecodingKey::from_jwk(&jwk).unwrap();
            let token = jwt::encode(
                &generated.signing_key().unwrap(),
                JwtType::Jwt,
                &json!({ "sub": "u", "exp": 4_000_000_000u64 }),
            );
            let validation = Validation::new(alg.jsonwebtoken());
            let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
                .unwrap()
                .claims;
            assert_eq!(claims["sub"], "u", "{alg}");

            let (rest, sig) = token.rsplit_once('.').unwrap();
            let flipped = if sig.starts_with('A') { "B" } else { "A" };
            let tampered = format!("{rest}.{flipped}{}", &sig[1..]);
            assert!(
                jsonwebtoken::decode::<Value>(&tampered, &key, &validation).is_err(),
                "{alg}"
            );
        }
    }

    #[test]
    fn the_provider_is_the_default_and_never_signs_or_panics() {
        install();
        assert!(is_installed());
        let key = EncodingKey::from_secret(b"secret").unwrap();
        let header = jsonwebtoken::Header::new(Algorithm::HS256);
        assert!(jsonwebtoken::encode(&header, &json!({ "sub": "u" }), &key).is_err());
        let rsa = EncodingKey::from_rsa_der(b"not a key");
        assert!(jsonwebtoken::jwk::Jwk::from_encoding_key(&rsa, Algorithm::RS256).is_err());
        let ec = EncodingKey::from_ec_der(b"not a key");
        assert!(jsonwebtoken::jwk::Jwk::from_encoding_key(&ec, Algorithm::ES256).is_err());
        let der = DecodingKey::from_rsa_der(b"not a key");
        assert!(jsonwebtoken::jwk::Jwk::from_decoding_key(&der, None).is_err());

        // Only RS256, ES256 and EdDSA verify; HS256 with any key is refused.
        let hmac = DecodingKey::from_secret(b"secret").unwrap();
        assert!(new_verifier(&Algorithm::HS256, &hmac).is_err());
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.\
                      ZvgdUx3jNgd-s6wN8Ry1JFbB7JsFXSvP7PaVOcWmSEE";
        assert!(jsonwebtoken::decode::<Value>(forged, &hmac, &validation).is_err());
    }

    #[test]
    fn jwk_thumbprints_use_ring() {
        install();
        // RFC 7638 section 3.1's example key and thumbprint.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
