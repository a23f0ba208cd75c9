//! High-entropy tokens (client secrets, admin API tokens, codes, refresh tokens).
//!
//! They carry at least 256 bits of randomness, so a single SHA-256 is a safe way to store
//! them: argon2 would only burn CPU on every request. Look-ups go by digest, and any comparison
//! of secret bytes is constant-time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;
use subtle::ConstantTimeEq;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random number generator failed");
}

/// A new URL-safe token of 32 random bytes, with an optional readable prefix (`pat_`, …).
pub fn random_token(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes);
    SecretString::from(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 digest of a token: what the database stores and indexes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, for a text key (a digest is no secret: it is what the database keeps).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Constant-time: whether `token` hashes to this digest.
    pub fn matches(&self, token: &str) -> bool {
        Self::of(token).0.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = random_token("pat_");
        let b = random_token("pat_");
        assert!(a.expose_secret().starts_with("pat_"));
        assert_eq!(a.expose_secret().len(), 4 + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn digest_matches_only_its_token() {
        let token = random_token("");
        let digest = TokenDigest::of(token.expose_secret());
        assert!(digest.matches(token.expose_secret()));
        assert!(!digest.matches("something else"));
    }
}
