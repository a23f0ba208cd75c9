//! How secrets in configuration shapes (portico.toml, environment, admin input) are read and
//! written: read leniently, written only as `<redacted>`, so that `portico config check` and
//! any serialised settings never show one.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serializer};

/// An optional secret. Environment values are parsed as TOML scalars, so a numeric password
/// arrives as a number: any scalar is taken as its text.
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Str(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    let value = Option::<Scalar>::deserialize(d)?;
    Ok(value.map(|v| {
        let text = match v {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        };
        SecretString::from(text)
    }))
}

/// Writes a set secret as `<redacted>`, an unset one as nothing.
pub fn redacted<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}
