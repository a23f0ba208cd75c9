//! Portico's JWT verification (`keys::jwt`, as `KeyRing::verify` runs it) on arbitrary text,
//! with the fixed key set of `fixtures/jwks.json` (RS256, ES256 and EdDSA keys): the header
//! (alg allow-list, kid lookup, typ), the ring signature check and the claims validation.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portico::fuzzing::JwtKeys;
use portico::keys::jwt::{Expect, JwtType};

static KEYS: LazyLock<JwtKeys> = LazyLock::new(|| {
    portico::keys::ring_verify::install();
    JwtKeys::from_jwks(include_str!("../fixtures/jwks.json"))
});
static SHOW: LazyLock<bool> = LazyLock::new(|| std::env::var_os("FUZZ_SHOW").is_some());

const ISSUER: &str = "https://portico.test";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    // An ID token for a client, and an access token at /userinfo (no audience check).
    let id_token = Expect {
        issuer: ISSUER,
        audience: Some("client-1"),
        typ: JwtType::Jwt,
        require_unexpired: true,
    };
    let access_token = Expect {
        issuer: ISSUER,
        audience: None,
        typ: JwtType::AccessToken,
        require_unexpired: true,
    };
    // `id_token_hint` at logout: expiry not required.
    let hint = Expect {
        require_unexpired: false,
        ..id_token
    };
    for expect in [id_token, access_token, hint] {
        let outcome = KEYS.verify(token, &expect);
        if *SHOW {
            eprintln!("{outcome:?}");
        }
        if let Ok(claims) = outcome {
            assert_eq!(claims["iss"], ISSUER);
            if let Some(aud) = expect.audience {
                let aud_ok = claims["aud"] == aud
                    || claims["aud"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == aud));
                assert!(aud_ok, "audience {:?}", claims["aud"]);
            }
        }
    }
});
