//! Portico's own JWT signing keys: generation, the shared key ring, the JWKS, and JWTs.

mod algorithm;
pub mod jwt;
mod keyring;
pub mod ring_verify;
mod signing_key;

pub use algorithm::SigningAlg;
pub use jwt::{JwtError, JwtType};
pub use keyring::{KeyRing, KeyRingError, PreparedRotation};
pub use signing_key::{GeneratedKey, SigningKey};
