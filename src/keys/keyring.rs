//! The key ring every instance shares through the database.
//!
//! Each instance keeps an in-memory snapshot (signers, verifiers, and the JWKS serialised once)
//! and re-reads the table every `keys.refresh_secs`, and at once when a token names a `kid` it
//! has not seen, so a rotation made anywhere reaches every instance without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use jsonwebtoken::DecodingKey;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;

use super::KeySettings;
use super::jwt::{self, Expect, JwtError};
use super::repo::{Retire, SigningKeyRow, insert_in as insert_signing_key};
use super::signing_key::KeyError;
use super::{GeneratedKey, SigningAlg, SigningKey};
use crate::crypto::Sealer;
use crate::store::sealed;
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("signing key {kid}: {source}")]
    Sealed {
        kid: String,
        source: crate::crypto::SealError,
    },
    #[error("signing key {0} has an unreadable public JWK")]
    PublicKey(String),
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
    #[error("key generation task failed")]
    Task,
}

struct Verifier {
    alg: SigningAlg,
    key: DecodingKey,
}

struct KeySet {
    signers: HashMap<SigningAlg, Arc<SigningKey>>,
    verifiers: HashMap<String, Arc<Verifier>>,
    jwks: Bytes,
    /// (kid, retired_at, publish_until) of every loaded row: unchanged means nothing to rebuild.
    fingerprint: Vec<(String, Option<i64>, Option<i64>)>,
    /// Active key ages, for timed rotation.
    active_rows: Vec<(SigningAlg, String, i64)>,
}

pub struct KeyRing {
    store: Store,
    sealer: Sealer,
    settings: KeySettings,
    current: RwLock<Arc<KeySet>>,
    last_miss_reload: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing")
    }
}

impl KeyRing {
    /// Makes sure every algorithm has an active key, then loads the ring.
    pub async fn load(
        store: Store,
        sealer: Sealer,
        settings: KeySettings,
    ) -> Result<Arc<Self>, KeyRingError> {
        let ring = Self {
            store,
            sealer,
            settings,
            current: RwLock::new(Arc::new(KeySet {
                signers: HashMap::new(),
                verifiers: HashMap::new(),
                jwks: Bytes::from_static(br#"{"keys":[]}"#),
                fingerprint: Vec::new(),
                active_rows: Vec::new(),
            })),
            last_miss_reload: Mutex::new(None),
        };
        ring.reload().await?;
        let missing: Vec<SigningAlg> = {
            let set = ring.snapshot();
            SigningAlg::ALL
                .into_iter()
                .filter(|alg| !set.signers.contains_key(alg))
                .collect()
        };
        for alg in missing {
            ring.add_key(alg, Retire::NoneIfActiveExists).await?;
        }
        ring.reload().await?;
        Ok(Arc::new(ring))
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current.read().expect("key ring lock").clone()
    }

    /// The active key for `alg`. `load` guarantees one exists for every algorithm.
    pub fn signer(&self, alg: SigningAlg) -> Result<Arc<SigningKey>, KeyRingError> {
        self.snapshot()
            .signers
            .get(&alg)
            .cloned()
            .ok_or(KeyRingError::NoActiveKey(alg))
    }

    /// The JWKS document, serialised when the ring last changed.
    pub fn jwks(&self) -> Bytes {
        self.snapshot().jwks.clone()
    }

    /// Verifies a token Portico signed: the header's algorithm must be the named key's own.
    pub async fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        expect: &Expect<'_>,
    ) -> Result<C, JwtError> {
        let (kid, alg, typ) = jwt::key_id(token)?;
        let verifier = match self.snapshot().verifiers.get(&kid).cloned() {
            Some(v) => v,
            None => {
                self.reload_after_miss().await;
                self.snapshot()
                    .verifiers
                    .get(&kid)
                    .cloned()
                    .ok_or(JwtError::UnknownKey)?
            }
        };
        jwt::decode(
            token,
            alg,
            typ.as_deref(),
            verifier.alg,
            &verifier.key,
            expect,
        )
    }

    /// An unknown `kid` may be a key another instance just made; re-read at most once a second
    /// so that forged kids cannot turn into a query per request.
    async fn reload_after_miss(&self) {
        {
            let mut last = self.last_miss_reload.lock().expect("miss lock");
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "reloading signing keys after an unknown kid failed");
        }
    }

    /// Re-reads the key table and rebuilds the snapshot if anything changed.
    pub async fn reload(&self) -> Result<(), KeyRingError> {
        let rows = crate::keys::repo::published(&self.store, store::now()).await?;
        let fingerprint: Vec<_> = rows
            .iter()
            .map(|r| (r.kid.clone(), r.retired_at, r.publish_until))
            .collect();
        if self.snapshot().fingerprint == fingerprint && !fingerprint.is_empty() {
            return Ok(());
        }
        let set = self.build(&rows, fingerprint)?;
        *self.current.write().expect("key ring lock") = Arc::new(set);
        Ok(())
    }

    fn build(
        &self,
        rows: &[SigningKeyRow],
        fingerprint: Vec<(String, Option<i64>, Option<i64>)>,
    ) -> Result<KeySet, KeyRingError> {
        let mut signers = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::with_capacity(rows.len());
        let mut active_rows = Vec::new();
        // Rows come newest first, so the first active key of each algorithm wins.
        for row in rows {
            let Some(alg) = SigningAlg::parse(&row.alg) else {
                continue;
            };
            let public: serde_json::Value = serde_json::from_str(&row.public_jwk)
                .map_err(|_| KeyRingError::PublicKey(row.kid.clone()))?;
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(public.clone())
                .map_err(|_| KeyRingError::PublicKey(row.kid.clone()))?;
            let key = DecodingKey::from_jwk(&jwk)
                .map_err(|_| KeyRingError::PublicKey(row.kid.clone()))?;
            verifiers.insert(row.kid.clone(), Arc::new(Verifier { alg, key }));
            jwks.push(public);
            if row.is_active() && !signers.contains_key(&alg) {
                let der = self
                    .sealer
                    .open(&row.private_key, sealed::SIGNING_KEY.target(&row.kid))
                    .map_err(|source| KeyRingError::Sealed {
                        kid: row.kid.clone(),
                        source,
                    })?;
                let signer = SigningKey::from_pkcs8(&row.kid, alg, der.expose_secret())?;
                signers.insert(alg, Arc::new(signer));
                active_rows.push((alg, row.kid.clone(), row.created_at));
            }
        }
        let jwks =
            serde_json::to_vec(&serde_json::json!({ "keys": jwks })).expect("JWKS serialises");
        Ok(KeySet {
            signers,
            verifiers,
            jwks: Bytes::from(jwks),
            fingerprint,
            active_rows,
        })
    }

    /// Generates and seals a key for `alg`, off the async threads (RSA takes a while).
    async fn generate_row(&self, alg: SigningAlg) -> Result<SigningKeyRow, KeyRingError> {
        let generated = tokio::task::spawn_blocking(move || GeneratedKey::generate(alg))
            .await
            .map_err(|_| KeyRingError::Task)??;
        Ok(SigningKeyRow {
            private_key: self.sealer.seal(
                generated.pkcs8.expose_secret(),
                sealed::SIGNING_KEY.target(&generated.kid),
            ),
            kid: generated.kid.clone(),
            alg: alg.as_str().to_owned(),
            public_jwk: generated.public_jwk.to_string(),
            created_at: store::now(),
            retired_at: None,
            publish_until: None,
        })
    }

    /// Generates, seals and stores a key for `alg`. Returns its kid if it was added.
    async fn add_key(
        &self,
        alg: SigningAlg,
        retire: Retire<'_>,
    ) -> Result<Option<String>, KeyRingError> {
        let row = self.generate_row(alg).await?;
        let added = super::repo::add(
            &self.store,
            &row,
            retire,
            row.created_at + self.retired_key_lifetime(),
        )
        .await?;
        Ok(added.then_some(row.kid))
    }

    /// A retired key must verify every token it signed: the longest token lifetime, plus the
    /// time other instances may still sign with it before they see the rotation.
    fn retired_key_lifetime(&self) -> i64 {
        (self.settings.max_token_lifetime_secs + self.settings.refresh_secs + 60) as i64
    }

    /// Adds a new active key for every algorithm; the old ones stay published until the
    /// tokens they signed have expired. Returns the new kids.
    pub async fn rotate(&self) -> Result<Vec<(SigningAlg, String)>, KeyRingError> {
        let prepared = self.prepare_rotation().await?;
        let mut tx = self.store.begin_write().await?;
        let added = prepared.store_in(&mut tx).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.reload().await?;
        Ok(added)
    }

    /// New keys for every algorithm, generated and sealed but not stored yet: the slow part of a
    /// rotation, done before the caller opens the transaction that stores them (and, for an
    /// admin's rotation, its audit entry). After the commit, [`KeyRing::reload`] picks them up.
    pub async fn prepare_rotation(&self) -> Result<PreparedRotation, KeyRingError> {
        let mut rows = Vec::with_capacity(SigningAlg::ALL.len());
        for alg in SigningAlg::ALL {
            rows.push((alg, self.generate_row(alg).await?));
        }
        Ok(PreparedRotation {
            rows,
            retired_lifetime: self.retired_key_lifetime(),
        })
    }

    /// One maintenance pass: timed rotation, removal of keys past publication, reload.
    pub async fn tick(&self) -> Result<(), KeyRingError> {
        if let Some(period) = self.settings.rotation_period() {
            let now = store::now();
            let due: Vec<(SigningAlg, String)> = self
                .snapshot()
                .active_rows
                .iter()
                .filter(|(_, _, created)| now - created >= period.as_secs() as i64)
                .map(|(alg, kid, _)| (*alg, kid.clone()))
                .collect();
            for (alg, kid) in due {
                // Only one instance wins the conditional retire; the others add nothing.
                if let Some(new) = self.add_key(alg, Retire::Only(&kid)).await? {
                    tracing::info!(%alg, old = %kid, new = %new, "rotated signing key on schedule");
                }
            }
        }
        crate::keys::repo::delete_expired(&self.store, store::now()).await?;
        self.reload().await
    }

    /// Runs `tick` every `keys.refresh_secs` until the returned task is aborted.
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let ring = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval =
                tokio::time::interval(Duration::from_secs(ring.settings.refresh_secs));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                if let Err(e) = ring.tick().await {
                    tracing::warn!(error = %e, "signing key maintenance failed");
                }
            }
        })
    }
}

/// A rotation's new keys, to store on the caller's transaction (see [`KeyRing::prepare_rotation`]).
pub struct PreparedRotation {
    rows: Vec<(SigningAlg, SigningKeyRow)>,
    retired_lifetime: i64,
}

impl std::fmt::Debug for PreparedRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.rows.iter().map(|(_, r)| r.kid.as_str()).collect();
        f.debug_struct("PreparedRotation")
            .field("kids", &kids)
            .finish()
    }
}

impl PreparedRotation {
    /// Stores the keys, each retiring the active key of its algorithm, on `conn`. Returns the
    /// new kids; nothing is visible to others until the caller commits.
    pub async fn store_in(
        self,
        conn: &mut AnyConnection,
    ) -> Result<Vec<(SigningAlg, String)>, KeyRingError> {
        let mut added = Vec::with_capacity(self.rows.len());
        for (alg, row) in self.rows {
            let publish_until = row.created_at + self.retired_lifetime;
            if insert_signing_key(conn, &row, Retire::AllActive, publish_until).await? {
                added.push((alg, row.kid));
            }
        }
        Ok(added)
    }
}
