//! `POST /token` before the database: the form parser (repeated parameters refused), Basic
//! client credentials, scope syntax and the PKCE check. The input's first line is the
//! `Authorization` header value (empty: none), the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let header = std::str::from_utf8(header).ok().filter(|h| !h.is_empty());
    portico::fuzzing::token_request(header, body);
});
