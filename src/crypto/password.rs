//! argon2id for human passwords only (admin sign-in).
//!
//! Hashing is CPU- and memory-hard by design, so it runs on the blocking pool behind a
//! semaphore: a burst of sign-ins queues instead of allocating 19 MiB per attempt at once.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password hashing task was cancelled")]
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    params: Params,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores)
    }
}

impl PasswordHasher {
    /// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    pub fn new(max_concurrent: usize) -> Self {
        let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            params,
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh salt.
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Cancelled)?;
        let argon2 = self.argon2();
        tokio::task::spawn_blocking(move || {
            argon2
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
        .map_err(|_| PasswordError::Cancelled)?
    }

    /// Whether `password` matches `phc`. A malformed stored hash counts as a mismatch.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: SecretString, phc: String) -> Result<bool, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Cancelled)?;
        let argon2 = self.argon2();
        tokio::task::spawn_blocking(move || {
            argon2
                .verify_password(password.expose_secret().as_bytes(), phc.as_str())
                .is_ok()
        })
        .await
        .map_err(|_| PasswordError::Cancelled)
    }

    /// Verifies against a fixed dummy hash, so an unknown account costs as much as a known one.
    pub async fn burn(&self, password: SecretString) -> Result<(), PasswordError> {
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2X8t4fLIm3dQ0bQ5R9Zy2cNf0zJkq8v1m2mP7cZx1aE";
        self.verify(password, DUMMY.to_owned()).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_fail() {
        let hasher = PasswordHasher::new(2);
        let phc = hasher
            .hash(SecretString::from("correct horse"))
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            hasher
                .verify(SecretString::from("correct horse"), phc.clone())
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(SecretString::from("wrong"), phc)
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(SecretString::from("x"), "garbage".into())
                .await
                .unwrap()
        );
    }
}
