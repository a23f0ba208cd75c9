//! A `jsonwebtoken` crypto provider that verifies RS256, ES256 and EdDSA with ring.
//!
//! jsonwebtoken's `rust_crypto` backend takes ~120 µs for an RS256 and ~480 µs for an ES256
//! verification here (docs/BENCHMARKS.md); ring does the same in a fraction of that. Portico
//! verifies its own access tokens on every `/userinfo` and `/introspect`, so this is on the hot
//! path. Claims validation stays jsonwebtoken's; only the signature check moves. Every other
//! algorithm keeps the `rust_crypto` implementation (Portico's allow-list never reaches them).

use std::sync::LazyLock;

use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, rust_crypto};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: rust_crypto::DEFAULT_PROVIDER.signer_factory,
    verifier_factory: new_verifier,
    key_utils: rust_crypto::DEFAULT_PROVIDER.key_utils.clone(),
});

/// Makes the ring verifier jsonwebtoken's process default. Idempotent; call before the first
/// verification.
pub fn install() {
    let _ = PROVIDER.install_default();
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
        _ => return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(alg, key),
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
}
