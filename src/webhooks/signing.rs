//! Endpoint secrets and Standard Webhooks 1.0 signatures.
//!
//! A secret is `whsec_` followed by the standard base64 of its key bytes; the signature of a
//! message is `v1,` then the base64 HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed with those
//! bytes. During a rotation's overlap both the new and the old secret sign, space-separated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::random_bytes;

const PREFIX: &str = "whsec_";
/// Key bytes in a generated secret (the spec asks for 24 to 64).
const KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a webhook secret is `whsec_` followed by 24 to 64 bytes in base64")]
pub struct BadSecret;

/// A parsed endpoint secret: the text shown to the admin once, and the HMAC key it holds.
#[derive(Clone)]
pub struct WebhookSecret {
    text: SecretString,
    key: hmac::Key,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_BYTES];
        random_bytes(&mut bytes);
        Self::parse(&format!("{PREFIX}{}", STANDARD.encode(bytes))).expect("a well-formed secret")
    }

    pub fn parse(text: &str) -> Result<Self, BadSecret> {
        let encoded = text.strip_prefix(PREFIX).ok_or(BadSecret)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| BadSecret)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(BadSecret);
        }
        Ok(Self {
            text: SecretString::from(text.to_owned()),
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// The `whsec_…` text: shown once to the admin, and what gets sealed in the database.
    pub fn expose(&self) -> &str {
        self.text.expose_secret()
    }

    /// `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// The `webhook-signature` header value: one signature per secret in force.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' tests.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_are_prefixed_long_and_distinct() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&a.expose()[6..]).unwrap().len(), 32);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!!",
            "whsec_AAAA",
        ] {
            assert_eq!(WebhookSecret::parse(bad).unwrap_err(), BadSecret, "{bad}");
        }
    }

    #[test]
    fn both_secrets_sign_during_an_overlap() {
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", 1, b"{}");
        assert_eq!(
            header,
            format!(
                "{} {}",
                a.sign("msg_1", 1, b"{}"),
                b.sign("msg_1", 1, b"{}")
            )
        );
    }
}
