//! The SAML ACS core: `verify_response` on a posted `SAMLResponse`, against a fixed SP
//! configuration, the pinned IdP of `fixtures/idp-metadata.xml` and a fixed clock.
//!
//! An input that starts with `<` is XML and is base64-encoded first, as the browser posts it
//! (so mutations work on the XML); anything else is taken as the form value itself (base64
//! decoding, whitespace, size limit). `portico::fuzzing::saml_verify` answers "new" and
//! "outstanding" for the replay cache and the request IDs, so a Response that passes every
//! check gets through to the end.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portico::upstream::saml::{IdpMetadata, SpConfig};

/// 2027-01-15T08:00:00Z, inside the seeds' validity windows.
const NOW: i64 = 1_800_000_000;

static SP: LazyLock<SpConfig> = LazyLock::new(|| SpConfig::new("https://portico.test", "acme"));
static IDP: LazyLock<IdpMetadata> = LazyLock::new(|| {
    IdpMetadata::parse(include_str!("../fixtures/idp-metadata.xml")).expect("IdP metadata")
});
static SHOW: LazyLock<bool> = LazyLock::new(|| std::env::var_os("FUZZ_SHOW").is_some());

fuzz_target!(|data: &[u8]| {
    let posted = if data.first() == Some(&b'<') {
        base64::engine::general_purpose::STANDARD.encode(data)
    } else {
        match std::str::from_utf8(data) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        }
    };
    let outcome = portico::fuzzing::saml_verify(&posted, &SP, &IDP, NOW);
    if *SHOW {
        eprintln!("{outcome:?}");
    }
    if let Ok(v) = outcome {
        assert!(!v.name_id.is_empty() && !v.assertion_id.is_empty());
        assert!(v.expires_at > NOW - SP.clock_skew_secs);
    }
});
