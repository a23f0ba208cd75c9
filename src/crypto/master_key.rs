//! The 32-byte key that seals every stored secret.
//!
//! It comes from `PORTICO_MASTER_KEY` (base64 or hex), from a file named by
//! `PORTICO_MASTER_KEY_FILE` (the same text, or 32 raw bytes), or, on a laptop with no
//! configuration, from `data/master.key`, generated with mode 0600 on first run.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretBox, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key: expected 32 bytes as base64 or 64 hex characters")]
    Malformed,
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the key in force came from; `serve` warns loudly about a generated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

pub struct MasterKey {
    bytes: SecretBox<[u8; 32]>,
    id: [u8; 4],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={})", self.id_hex())
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        Self::from_bytes(*self.bytes.expose_secret())
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        // The id tells which key sealed an envelope without revealing anything about the key.
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"portico master key id\0".as_slice(), &bytes].concat(),
        );
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest.as_ref()[..4]);
        Self {
            bytes: SecretBox::new(Box::new(bytes)),
            id,
        }
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        super::random_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Parses base64 (standard or URL-safe, padded or not) or hex text.
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(text)
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .ok()
        };
        let bytes: [u8; 32] = decoded
            .and_then(|v| v.try_into().ok())
            .ok_or(MasterKeyError::Malformed)?;
        Ok(Self::from_bytes(bytes))
    }

    /// Reads a key file: base64/hex text, or exactly 32 raw bytes.
    pub fn read_file(path: &Path) -> Result<Self, MasterKeyError> {
        let raw = std::fs::read(path).map_err(|source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        if let Ok(text) = std::str::from_utf8(&raw)
            && let Ok(key) = Self::parse(text)
        {
            return Ok(key);
        }
        let bytes: [u8; 32] = raw.try_into().map_err(|_| MasterKeyError::Malformed)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key given (`key`, from the environment or config), the one in `key_file`, or the one
    /// in `<data_dir>/master.key`, generated if absent.
    pub fn load(
        key: Option<&SecretString>,
        key_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Self, MasterKeySource), MasterKeyError> {
        if let Some(text) = key {
            return Ok((
                Self::parse(text.expose_secret())?,
                MasterKeySource::Environment,
            ));
        }
        if let Some(path) = key_file {
            return Ok((
                Self::read_file(path)?,
                MasterKeySource::File(path.to_owned()),
            ));
        }
        let path = data_dir.join("master.key");
        if path.exists() {
            return Ok((Self::read_file(&path)?, MasterKeySource::File(path)));
        }
        let key = Self::generate();
        key.write_new_file(&path)?;
        Ok((key, MasterKeySource::Generated(path)))
    }

    /// Writes the key as base64 to a new file readable only by its owner.
    pub fn write_new_file(&self, path: &Path) -> Result<(), MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        writeln!(file, "{}", self.to_base64()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes.expose_secret())
    }

    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    pub fn id_hex(&self) -> String {
        super::token::hex(&self.id)
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        self.bytes.expose_secret()
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base64_and_hex_to_the_same_key() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(MasterKey::parse(&b64).unwrap().id(), key.id());
        assert_eq!(MasterKey::parse(&hex).unwrap().id(), key.id());
        assert!(MasterKey::parse("too short").is_err());
    }

    #[test]
    fn generated_file_is_private_and_reloads() {
        let dir = std::env::temp_dir().join(format!("portico-mk-{}", uuid::Uuid::new_v4()));
        let (key, source) = MasterKey::load(None, None, &dir).unwrap();
        assert!(matches!(source, MasterKeySource::Generated(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, source) = MasterKey::load(None, None, &dir).unwrap();
        assert!(matches!(source, MasterKeySource::File(_)));
        assert_eq!(again.id(), key.id());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
