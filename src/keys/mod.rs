//! Portico's own JWT signing keys: generation, the shared key ring, the JWKS, and JWTs.

mod algorithm;
pub mod jwt;
mod keyring;
pub mod repo;
pub mod ring_verify;
mod signing_key;

pub use algorithm::SigningAlg;
pub use jwt::{JwtError, JwtType};
pub use keyring::{KeyRing, KeyRingError, PreparedRotation};
pub use signing_key::{GeneratedKey, SigningKey};

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[keys]` section: signing-key rotation and how long retired keys stay published.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// A new signing key is made when the active one is this many days old; 0 turns it off.
    pub rotation_days: u64,
    /// How often an instance re-reads the key table, so a rotation elsewhere reaches it.
    pub refresh_secs: u64,
    /// The longest lifetime of any JWT Portico signs; a retired key stays published this long.
    pub max_token_lifetime_secs: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            rotation_days: 90,
            refresh_secs: 60,
            max_token_lifetime_secs: 24 * 3600,
        }
    }
}

impl KeySettings {
    pub fn rotation_period(&self) -> Option<Duration> {
        (self.rotation_days > 0).then(|| Duration::from_secs(self.rotation_days * 86_400))
    }
}
