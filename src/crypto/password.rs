//! argon2id for human passwords only (admin sign-in).
//!
//! Hashing is CPU- and memory-hard by design, so it runs on the blocking pool behind a
//! semaphore (one permit per core), and its 19 MiB of working memory comes from a pool of
//! buffers, at most one per permit, allocated once and reused. Letting argon2 allocate its own
//! buffer on whichever blocking thread ran it left a 19 MiB free chunk in each thread's malloc
//! arena, which glibc never returned: RSS climbed to ~1 GB under a flood of sign-ins.
//!
//! Verification parses the stored PHC string itself and compares in constant time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
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
    max_concurrent: usize,
    params: Params,
    pool: Arc<MemoryPool>,
    stats: Arc<Stats>,
}

/// Reusable argon2 working memory, each buffer `params.block_count()` blocks.
#[derive(Debug, Default)]
struct MemoryPool {
    free: Mutex<Vec<Vec<Block>>>,
    allocated: AtomicUsize,
}

/// What the hasher has done, for tests and benchmarks.
#[derive(Debug, Default)]
struct Stats {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    runs: AtomicU64,
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
        let max_concurrent = max_concurrent.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            params,
            pool: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// How many hashes may run at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// The most hashes that ever ran at once.
    pub fn peak_concurrent(&self) -> usize {
        self.stats.peak.load(Ordering::Relaxed)
    }

    /// How many hashes have run (sign-ins, burns and new passwords).
    pub fn runs(&self) -> u64 {
        self.stats.runs.load(Ordering::Relaxed)
    }

    /// How many working-memory buffers exist; never more than `max_concurrent`.
    pub fn buffers(&self) -> usize {
        self.pool.allocated.load(Ordering::Relaxed)
    }

    /// Runs argon2 with `params` on the blocking pool, within a permit, with pooled memory.
    async fn run(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: SecretString,
        salt: Vec<u8>,
        out_len: usize,
    ) -> Result<Vec<u8>, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Cancelled)?;
        let (pool, stats, standard) = (self.pool.clone(), self.stats.clone(), self.params.clone());
        tokio::task::spawn_blocking(move || {
            let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            stats.peak.fetch_max(now, Ordering::SeqCst);
            stats.runs.fetch_add(1, Ordering::Relaxed);
            let blocks = params.block_count();
            let pooled = params.block_count() == standard.block_count();
            let mut memory = match pooled {
                true => pool.take(blocks),
                false => vec![Block::new(); blocks],
            };
            let mut out = vec![0u8; out_len];
            let result = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                &salt,
                &mut out,
                &mut memory[..],
            );
            if pooled {
                pool.give(memory);
            }
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            result
                .map(|()| out)
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
        .map_err(|_| PasswordError::Cancelled)?
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh salt.
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let salt = argon2::password_hash::generate_salt();
        let out_len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let out = self
            .run(
                Algorithm::Argon2id,
                Version::V0x13,
                self.params.clone(),
                password,
                salt.to_vec(),
                out_len,
            )
            .await?;
        let failed = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| failed(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches `phc`. A malformed stored hash counts as a mismatch.
    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, password: SecretString, phc: String) -> Result<bool, PasswordError> {
        let Some(stored) = Stored::parse(&phc) else {
            return Ok(false);
        };
        let out = self
            .run(
                stored.algorithm,
                stored.version,
                stored.params,
                password,
                stored.salt,
                stored.hash.len(),
            )
            .await?;
        Ok(bool::from(out.ct_eq(&stored.hash)))
    }

    /// Verifies against a fixed dummy hash, so an unknown account costs as much as a known one.
    pub async fn burn(&self, password: SecretString) -> Result<(), PasswordError> {
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2X8t4fLIm3dQ0bQ5R9Zy2cNf0zJkq8v1m2mP7cZx1aE";
        self.verify(password, DUMMY.to_owned()).await.map(|_| ())
    }
}

/// A stored PHC string, parsed.
struct Stored {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Stored {
    fn parse(phc: &str) -> Option<Self> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::V0x10,
        };
        // Params carry the output length of the stored hash.
        let params = Params::try_from(&parsed).ok()?;
        Some(Self {
            algorithm,
            version,
            params,
            salt: parsed.salt?.as_ref().to_vec(),
            hash: parsed.hash?.as_bytes().to_vec(),
        })
    }
}

impl MemoryPool {
    fn take(&self, blocks: usize) -> Vec<Block> {
        if let Some(buffer) = self.free.lock().expect("pool lock").pop() {
            return buffer;
        }
        self.allocated.fetch_add(1, Ordering::Relaxed);
        vec![Block::new(); blocks]
    }

    fn give(&self, buffer: Vec<Block>) {
        self.free.lock().expect("pool lock").push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn matches(hasher: &PasswordHasher, password: &str, phc: &str) -> bool {
        hasher
            .verify(SecretString::from(password), phc.to_owned())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_fail() {
        let hasher = PasswordHasher::new(2);
        let phc = hasher
            .hash(SecretString::from("correct horse"))
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(matches(&hasher, "correct horse", &phc).await);
        assert!(!matches(&hasher, "wrong", &phc).await);
        assert!(!matches(&hasher, "x", "garbage").await);
        assert_eq!(hasher.buffers(), 1, "one buffer, reused");
    }

    #[tokio::test]
    async fn hashes_from_the_argon2_crate_verify_here() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(19 * 1024, 2, 1, None).unwrap();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let phc = argon2.hash_password(b"tr0ub4dor&3").unwrap().to_string();
        let hasher = PasswordHasher::new(1);
        assert!(matches(&hasher, "tr0ub4dor&3", &phc).await);
        assert!(!matches(&hasher, "nope", &phc).await);
        // And ours verify there.
        let ours = hasher.hash(SecretString::from("correct")).await.unwrap();
        assert!(argon2.verify_password(b"correct", ours.as_str()).is_ok());
        // A cheaper stored hash (other parameters) verifies with memory of its own.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"small")
        .unwrap()
        .to_string();
        assert!(matches(&hasher, "small", &small).await);
        assert_eq!(hasher.buffers(), 1);
    }
}
