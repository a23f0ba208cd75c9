//! Sealing secrets at rest with AES-256-GCM.
//!
//! Envelope: `version (1) | master key id (4) | nonce (12) | ciphertext | tag (16)`.
//! The associated data names the table, column and row the value belongs to, so a ciphertext
//! copied into another row or column does not open: the tag check fails.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{SecretSlice, SecretString};

use super::MasterKey;
use super::token::hex;

const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 12;
const TAG: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value was made with master key {found}, not the key in use ({expected})")]
    WrongKey { expected: String, found: String },
    #[error("sealed value failed authentication (tampered, or moved from another row)")]
    Forged,
    #[error("sealed value is not UTF-8")]
    NotText,
}

/// Where a sealed value lives; bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct SealTarget<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a str,
}

impl<'a> SealTarget<'a> {
    pub const fn new(table: &'static str, column: &'static str, row: &'a str) -> Self {
        Self { table, column, row }
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad =
            Vec::with_capacity(32 + self.table.len() + self.column.len() + self.row.len());
        aad.extend_from_slice(b"portico-seal-v1\0");
        aad.extend_from_slice(self.table.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.column.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.row.as_bytes());
        aad
    }
}

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    key_id: [u8; 4],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(key id {})", hex(&self.key_id))
    }
}

impl Sealer {
    pub fn new(master: &MasterKey) -> Self {
        let key = Key::<Aes256Gcm>::from(*master.expose());
        Self {
            cipher: Aes256Gcm::new(&key),
            key_id: master.id(),
        }
    }

    pub fn seal(&self, plaintext: &[u8], target: SealTarget<'_>) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        super::random_bytes(&mut nonce);
        let aad = target.aad();
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(HEADER + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn seal_str(&self, plaintext: &str, target: SealTarget<'_>) -> Vec<u8> {
        self.seal(plaintext.as_bytes(), target)
    }

    pub fn open(
        &self,
        envelope: &[u8],
        target: SealTarget<'_>,
    ) -> Result<SecretSlice<u8>, SealError> {
        if envelope.len() < HEADER + TAG || envelope[0] != VERSION {
            return Err(SealError::Malformed);
        }
        let found: [u8; 4] = envelope[1..5]
            .try_into()
            .map_err(|_| SealError::Malformed)?;
        if found != self.key_id {
            return Err(SealError::WrongKey {
                expected: hex(&self.key_id),
                found: hex(&found),
            });
        }
        let nonce: [u8; 12] = envelope[5..HEADER]
            .try_into()
            .map_err(|_| SealError::Malformed)?;
        let aad = target.aad();
        let plaintext = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &envelope[HEADER..],
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Forged)?;
        Ok(SecretSlice::from(plaintext))
    }

    pub fn open_string(
        &self,
        envelope: &[u8],
        target: SealTarget<'_>,
    ) -> Result<SecretString, SealError> {
        use secrecy::ExposeSecret;
        let bytes = self.open(envelope, target)?;
        let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| SealError::NotText)?;
        Ok(SecretString::from(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const ROW: SealTarget<'static> = SealTarget::new("providers", "client_secret", "google");

    #[test]
    fn a_sealed_secret_opens() {
        let sealer = Sealer::new(&MasterKey::generate());
        let envelope = sealer.seal(b"upstream refresh token", ROW);
        assert_eq!(
            sealer.open(&envelope, ROW).unwrap().expose_secret(),
            b"upstream refresh token"
        );
    }

    #[test]
    fn nonces_differ_between_seals() {
        let sealer = Sealer::new(&MasterKey::generate());
        assert_ne!(sealer.seal(b"x", ROW), sealer.seal(b"x", ROW));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let sealer = Sealer::new(&MasterKey::generate());
        let envelope = sealer.seal(b"secret", ROW);
        for i in 0..envelope.len() {
            let mut bad = envelope.clone();
            bad[i] ^= 0x01;
            assert!(
                sealer.open(&bad, ROW).is_err(),
                "byte {i} flipped still opened"
            );
        }
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let envelope = Sealer::new(&MasterKey::generate()).seal(b"secret", ROW);
        let err = Sealer::new(&MasterKey::generate())
            .open(&envelope, ROW)
            .unwrap_err();
        assert!(matches!(err, SealError::WrongKey { .. }));
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_column_is_refused() {
        let sealer = Sealer::new(&MasterKey::generate());
        let envelope = sealer.seal(b"secret", ROW);
        let other_row = SealTarget::new("providers", "client_secret", "github");
        let other_column = SealTarget::new("providers", "other", "google");
        let other_table = SealTarget::new("webhooks", "client_secret", "google");
        assert_eq!(
            sealer.open(&envelope, other_row).unwrap_err(),
            SealError::Forged
        );
        assert_eq!(
            sealer.open(&envelope, other_column).unwrap_err(),
            SealError::Forged
        );
        assert_eq!(
            sealer.open(&envelope, other_table).unwrap_err(),
            SealError::Forged
        );
    }

    #[test]
    fn truncated_envelopes_are_malformed() {
        let sealer = Sealer::new(&MasterKey::generate());
        let envelope = sealer.seal(b"secret", ROW);
        assert_eq!(
            sealer.open(&envelope[..10], ROW).unwrap_err(),
            SealError::Malformed
        );
        assert_eq!(sealer.open(&[], ROW).unwrap_err(), SealError::Malformed);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const PLACES: [(&str, &str); 4] = [
            ("providers", "client_secret"),
            ("identities", "refresh_token"),
            ("signing_keys", "private_key"),
            ("webhooks", "secret"),
        ];

        fn sealer() -> &'static Sealer {
            static SEALER: std::sync::LazyLock<Sealer> =
                std::sync::LazyLock::new(|| Sealer::new(&MasterKey::generate()));
            &SEALER
        }

        fn place() -> impl Strategy<Value = (&'static str, &'static str, String)> {
            (prop::sample::select(PLACES.to_vec()), ".{0,12}")
                .prop_map(|((table, column), row)| (table, column, row))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn sealed_values_open_where_they_were_sealed(
                plaintext in prop::collection::vec(any::<u8>(), 0..300),
                (table, column, row) in place(),
            ) {
                let here = SealTarget::new(table, column, &row);
                let envelope = sealer().seal(&plaintext, here);
                prop_assert_eq!(envelope.len(), HEADER + plaintext.len() + TAG);
                let opened = sealer().open(&envelope, here).unwrap();
                prop_assert_eq!(opened.expose_secret(), plaintext.as_slice());
            }

            #[test]
            fn another_table_column_or_row_never_opens(
                plaintext in prop::collection::vec(any::<u8>(), 0..64),
                (table, column, row) in place(),
                (other_table, other_column, other_row) in place(),
            ) {
                prop_assume!((table, column, &row) != (other_table, other_column, &other_row));
                let envelope = sealer().seal(&plaintext, SealTarget::new(table, column, &row));
                let elsewhere = SealTarget::new(other_table, other_column, &other_row);
                prop_assert_eq!(sealer().open(&envelope, elsewhere).unwrap_err(), SealError::Forged);
            }

            #[test]
            fn a_tampered_envelope_never_opens(
                plaintext in prop::collection::vec(any::<u8>(), 0..64),
                (table, column, row) in place(),
                index in any::<prop::sample::Index>(),
                mask in 1u8..,
                cut in 1usize..8,
                extra in prop::collection::vec(any::<u8>(), 1..8),
            ) {
                let here = SealTarget::new(table, column, &row);
                let envelope = sealer().seal(&plaintext, here);
                let mut flipped = envelope.clone();
                flipped[index.index(envelope.len())] ^= mask;
                prop_assert!(sealer().open(&flipped, here).is_err());
                let truncated = &envelope[..envelope.len() - cut];
                prop_assert!(sealer().open(truncated, here).is_err());
                let extended = [envelope.as_slice(), &extra].concat();
                prop_assert!(sealer().open(&extended, here).is_err());
            }
        }
    }
}
