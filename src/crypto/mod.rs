//! Cryptography that the rest of Portico builds on: the master key, sealing secrets at rest,
//! digests of high-entropy tokens, and argon2id for the few human passwords.

pub mod master_key;
pub mod password;
pub mod sealer;
pub mod secret_serde;
pub mod token;

pub use master_key::{MasterKey, MasterKeyError, MasterKeySource};
pub use password::{PasswordError, PasswordHasher};
pub use sealer::{SealError, SealTarget, Sealer};
pub use token::{TokenDigest, hex, random_bytes, random_token};
