//! `GET /authorize`: the query parser, the client's redirect URI match (exact, or loopback
//! but for the port), parameter validation (response_type, scope, PKCE, prompt, max_age,
//! resource, provider) and the redirect built from the outcome, for two fixed clients.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portico::clients::Client;

static CLIENTS: LazyLock<Vec<Client>> = LazyLock::new(portico::fuzzing::authorize_clients);

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        portico::fuzzing::authorize_query(&CLIENTS, query);
    }
});
