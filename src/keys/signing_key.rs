//! One signing key: generation, its public JWK and `kid`, and signing.
//!
//! Private-key operations run on constant-time implementations, never the pure-Rust `rsa`
//! crate. Each algorithm uses the library that measures fastest on it (`cargo bench --bench
//! crypto`, docs/BENCHMARKS.md): RSA signs through the system OpenSSL (blinded, and several
//! times faster than ring where the CPU has wide-multiply instructions OpenSSL uses, such as
//! AVX-512 IFMA); ES256 and EdDSA sign with ring. ring cannot generate RSA keys either, so RSA
//! generation uses OpenSSL too.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::Signer;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::{Value, json};

use super::SigningAlg;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("stored {alg} key {kid} is unusable: {reason}")]
    Rejected {
        alg: SigningAlg,
        kid: String,
        reason: String,
    },
}

/// A freshly generated key, ready to be sealed and stored.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub pkcs8: SecretSlice<u8>,
    /// The public JWK with `kid`, `alg` and `use`, as published.
    pub public_jwk: Value,
}

impl GeneratedKey {
    /// Generates a key; RSA takes tens of milliseconds, so call this off the async executor.
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let gen_err = |e: &dyn std::fmt::Display| KeyError::Generate(e.to_string());
        let (pkcs8, members): (Vec<u8>, BTreeMap<&str, String>) = match alg {
            SigningAlg::RS256 => {
                let rsa = openssl::rsa::Rsa::generate(2048).map_err(|e| gen_err(&e))?;
                let members = BTreeMap::from([
                    ("e", b64(&rsa.e().to_vec())),
                    ("kty", "RSA".to_owned()),
                    ("n", b64(&rsa.n().to_vec())),
                ]);
                let pkey = openssl::pkey::PKey::from_rsa(rsa).map_err(|e| gen_err(&e))?;
                let der = pkey.private_key_to_pkcs8().map_err(|e| gen_err(&e))?;
                (der, members)
            }
            SigningAlg::ES256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|e| gen_err(&e))?;
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
                        .map_err(|e| gen_err(&e))?;
                // Uncompressed point: 0x04 | x (32) | y (32).
                let point = pair.public_key().as_ref();
                let members = BTreeMap::from([
                    ("crv", "P-256".to_owned()),
                    ("kty", "EC".to_owned()),
                    ("x", b64(&point[1..33])),
                    ("y", b64(&point[33..65])),
                ]);
                (doc.as_ref().to_vec(), members)
            }
            SigningAlg::EdDSA => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| gen_err(&e))?;
                let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|e| gen_err(&e))?;
                let members = BTreeMap::from([
                    ("crv", "Ed25519".to_owned()),
                    ("kty", "OKP".to_owned()),
                    ("x", b64(pair.public_key().as_ref())),
                ]);
                (doc.as_ref().to_vec(), members)
            }
        };
        let kid = thumbprint(&members);
        let mut jwk = json!(members);
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        Ok(Self {
            kid,
            alg,
            pkcs8: SecretSlice::from(pkcs8),
            public_jwk: jwk,
        })
    }

    pub fn signing_key(&self) -> Result<SigningKey, KeyError> {
        SigningKey::from_pkcs8(&self.kid, self.alg, self.pkcs8.expose_secret())
    }
}

/// RFC 7638 thumbprint: SHA-256 over the required members, sorted, without white space.
fn thumbprint(members: &BTreeMap<&str, String>) -> String {
    let canonical = serde_json::to_string(members).expect("a string map serialises");
    b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    /// An RSA key of at least 2048 bits (RS256: PKCS #1 v1.5 with SHA-256).
    Rsa(PKey<Private>),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key loaded for signing.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: Pair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} {})", self.alg, self.kid)
    }
}

impl SigningKey {
    pub fn from_pkcs8(kid: &str, alg: SigningAlg, der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let rejected = |e: ring::error::KeyRejected| KeyError::Rejected {
            alg,
            kid: kid.to_owned(),
            reason: e.to_string(),
        };
        let pair = match alg {
            SigningAlg::RS256 => {
                Pair::Rsa(rsa_from_pkcs8(der).map_err(|reason| KeyError::Rejected {
                    alg,
                    kid: kid.to_owned(),
                    reason,
                })?)
            }
            SigningAlg::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(rejected)?,
            ),
            SigningAlg::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            pair,
            rng,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The JWS signature over `message` (for ES256, the fixed-size `r || s` form JWS requires).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        const FAILED: &str = "signing with a validated in-memory key cannot fail";
        match &self.pair {
            Pair::Rsa(key) => {
                let mut signer = Signer::new(MessageDigest::sha256(), key).expect(FAILED);
                signer.set_rsa_padding(Padding::PKCS1).expect(FAILED);
                signer.sign_oneshot_to_vec(message).expect(FAILED)
            }
            Pair::Ec(pair) => pair
                .sign(&self.rng, message)
                .expect(FAILED)
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }
}

/// An RSA private key from PKCS #8, held to what RS256 here allows: 2048 to 8192 bits, and a
/// pairwise-consistent key: a signature made with it verifies with its public half.
///
/// The pairwise test proves what signing needs (the published modulus and exponent verify what
/// the key signs) in about 0.3 ms. OpenSSL's `check_key` also tests the primes, which took
/// 30-70 ms per RSA-2048 key, most of Portico's start-up; the keys loaded here were generated
/// by Portico and come out of authenticated sealing, so their primes are not in question.
fn rsa_from_pkcs8(der: &[u8]) -> Result<PKey<Private>, String> {
    let key = PKey::private_key_from_pkcs8(der).map_err(|e| e.to_string())?;
    let rsa = key.rsa().map_err(|_| "not an RSA key".to_owned())?;
    let bits = rsa.size() * 8;
    if !(2048..=8192).contains(&bits) {
        return Err(format!("an RSA key of {bits} bits (2048 to 8192 allowed)"));
    }
    if !rsa_pairwise_consistent(&key) {
        return Err("an inconsistent RSA key: its signature does not verify".to_owned());
    }
    Ok(key)
}

fn rsa_pairwise_consistent(key: &PKey<Private>) -> bool {
    const MESSAGE: &[u8] = b"portico: pairwise consistency test";
    let signed = Signer::new(MessageDigest::sha256(), key).and_then(|mut signer| {
        signer.set_rsa_padding(Padding::PKCS1)?;
        signer.sign_oneshot_to_vec(MESSAGE)
    });
    let Ok(signature) = signed else {
        return false;
    };
    openssl::sign::Verifier::new(MessageDigest::sha256(), key)
        .and_then(|mut verifier| {
            verifier.set_rsa_padding(Padding::PKCS1)?;
            verifier.verify_oneshot(&signature, MESSAGE)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_loadable_key_with_a_thumbprint_kid() {
        for alg in SigningAlg::ALL {
            let key = GeneratedKey::generate(alg).unwrap();
            assert_eq!(key.kid.len(), 43, "{alg}: SHA-256 in base64url");
            assert_eq!(key.public_jwk["kid"], key.kid);
            assert_eq!(key.public_jwk["alg"], alg.as_str());
            assert_eq!(key.public_jwk["use"], "sig");
            let signer = key.signing_key().unwrap();
            assert!(!signer.sign(b"message").is_empty());
        }
    }

    #[test]
    fn rs256_signatures_verify_with_the_published_key_and_other_keys_are_refused() {
        let key = GeneratedKey::generate(SigningAlg::RS256).unwrap();
        let signer = key.signing_key().unwrap();
        let signature = signer.sign(b"header.payload");
        assert_eq!(signature.len(), 256);
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key.public_jwk["n"].as_str().unwrap())
            .unwrap();
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key.public_jwk["e"].as_str().unwrap())
            .unwrap();
        let public = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
        let scheme = &ring::signature::RSA_PKCS1_2048_8192_SHA256;
        public
            .verify(scheme, b"header.payload", &signature)
            .unwrap();
        assert!(
            public
                .verify(scheme, b"header.payloaX", &signature)
                .is_err()
        );

        // A 1024-bit key, or a key of another type, is not loaded as an RS256 key.
        let weak = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        let err = SigningKey::from_pkcs8(
            "k",
            SigningAlg::RS256,
            &weak.private_key_to_pkcs8().unwrap(),
        );
        assert!(matches!(err, Err(KeyError::Rejected { .. })), "{err:?}");
        let ec = GeneratedKey::generate(SigningAlg::ES256).unwrap();
        let err = SigningKey::from_pkcs8("k", SigningAlg::RS256, ec.pkcs8.expose_secret());
        assert!(matches!(err, Err(KeyError::Rejected { .. })), "{err:?}");
    }

    #[test]
    fn an_rsa_key_whose_public_half_does_not_match_is_refused() {
        use openssl::rsa::Rsa;
        let own = Rsa::generate(2048).unwrap();
        let other = Rsa::generate(2048).unwrap();
        // The private parts of one key under another key's modulus: what a mixed-up key
        // store would hold. Its signatures do not verify with the modulus it would publish.
        let mixed = Rsa::from_private_components(
            other.n().to_owned().unwrap(),
            own.e().to_owned().unwrap(),
            own.d().to_owned().unwrap(),
            own.p().unwrap().to_owned().unwrap(),
            own.q().unwrap().to_owned().unwrap(),
            own.dmp1().unwrap().to_owned().unwrap(),
            own.dmq1().unwrap().to_owned().unwrap(),
            own.iqmp().unwrap().to_owned().unwrap(),
        )
        .unwrap();
        let der = PKey::from_rsa(mixed)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap();
        let err = SigningKey::from_pkcs8("k", SigningAlg::RS256, &der);
        assert!(
            matches!(&err, Err(KeyError::Rejected { reason, .. }) if reason.contains("inconsistent")),
            "{err:?}"
        );
        let good = PKey::from_rsa(own).unwrap().private_key_to_pkcs8().unwrap();
        assert!(SigningKey::from_pkcs8("k", SigningAlg::RS256, &good).is_ok());
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 section 3.1.
        let members = BTreeMap::from([
            ("e", "AQAB".to_owned()),
            ("kty", "RSA".to_owned()),
            ("n", "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".to_owned()),
        ]);
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
