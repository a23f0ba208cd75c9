//! The key-check value: a known plaintext sealed with the master key on first start.
//!
//! Opening it proves the configured key is the one the database was sealed with, so a wrong
//! key stops the start with a clear message instead of failing on some secret much later.

use secrecy::ExposeSecret;

use super::{Store, StoreError};
use crate::crypto::{SealError, SealTarget, Sealer};

const CHECK_KEY: &str = "master_key_check";
const CHECK_PLAINTEXT: &[u8] = b"portico master key check v1";

fn target() -> SealTarget<'static> {
    super::sealed::META_VALUE.target(CHECK_KEY)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The database had no check value yet; this key's was written.
    Initialised,
    /// The key opened the stored check value.
    Matched,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the master key in use (id {configured}) is not the one this database was sealed with{stored}; \
     set PORTICO_MASTER_KEY or PORTICO_MASTER_KEY_FILE to the right key"
)]
pub struct MasterKeyMismatch {
    pub configured: String,
    pub stored: String,
}

impl Store {
    /// Verifies the master key against the database, writing the check value on first start.
    pub async fn check_master_key(
        &self,
        sealer: &Sealer,
        key_id: &str,
    ) -> Result<KeyCheck, anyhow::Error> {
        let sealed = sealer.seal(CHECK_PLAINTEXT, target());
        let inserted = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(CHECK_KEY)
        .bind(sealed)
        .execute(self.pool())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if inserted == 1 {
            return Ok(KeyCheck::Initialised);
        }
        self.verify_master_key(sealer, key_id).await?;
        Ok(KeyCheck::Matched)
    }

    /// Verifies the master key against the database without writing (`config diff`): a
    /// database with no check value yet has nothing sealed to check against.
    pub async fn verify_master_key(&self, sealer: &Sealer, key_id: &str) -> anyhow::Result<()> {
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(CHECK_KEY)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::from)?;
        let Some(stored) = stored else {
            return Ok(());
        };
        match sealer.open(&stored, target()) {
            Ok(plain) if plain.expose_secret() == CHECK_PLAINTEXT => Ok(()),
            Ok(_) => Err(StoreError::Corrupt("the master key check value is wrong".into()).into()),
            Err(SealError::WrongKey { found, .. }) => Err(MasterKeyMismatch {
                configured: key_id.to_owned(),
                stored: format!(" (id {found})"),
            }
            .into()),
            Err(_) => Err(MasterKeyMismatch {
                configured: key_id.to_owned(),
                stored: String::new(),
            }
            .into()),
        }
    }
}
