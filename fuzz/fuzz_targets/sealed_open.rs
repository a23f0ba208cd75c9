//! The sealed-envelope decoder: `Sealer::open` on arbitrary bytes for one of a few rows
//! (first byte), with the fixed master key 0x07 * 32; then a seal/open round trip of the
//! input under a row named by it, which must open there and nowhere else, and must not open
//! once any byte is flipped.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portico::crypto::{MasterKey, SealError, SealTarget, Sealer};
use secrecy::ExposeSecret;

static SEALER: LazyLock<Sealer> = LazyLock::new(|| Sealer::new(&MasterKey::from_bytes([7; 32])));

const TARGETS: [(&str, &str); 4] = [
    ("providers", "client_secret"),
    ("signing_keys", "private_key"),
    ("identities", "refresh_token"),
    ("webhooks", "secret"),
];
const ROWS: [&str; 2] = ["google", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, envelope)) = data.split_first() else {
        return;
    };
    let (table, column) = TARGETS[usize::from(selector) % TARGETS.len()];
    let row = ROWS[usize::from(selector / 4) % ROWS.len()];
    let _ = SEALER.open(envelope, SealTarget::new(table, column, row));
    let _ = SEALER.open_string(envelope, SealTarget::new(table, column, row));

    let row = String::from_utf8_lossy(&data[..data.len().min(40)]);
    let here = SealTarget::new(table, column, &row);
    let sealed = SEALER.seal(data, here);
    assert_eq!(SEALER.open(&sealed, here).unwrap().expose_secret(), data);
    let elsewhere = format!("{row}x");
    assert_eq!(
        SEALER
            .open(&sealed, SealTarget::new(table, column, &elsewhere))
            .unwrap_err(),
        SealError::Forged
    );
    let (other_table, other_column) = TARGETS[(usize::from(selector) + 1) % TARGETS.len()];
    assert!(
        SEALER
            .open(&sealed, SealTarget::new(other_table, column, &row))
            .is_err()
    );
    assert!(
        SEALER
            .open(&sealed, SealTarget::new(table, other_column, &row))
            .is_err()
    );
    let i = usize::from(selector) * 7 % sealed.len();
    let mut tampered = sealed.clone();
    tampered[i] ^= 1 << (selector % 8);
    assert!(
        SEALER.open(&tampered, here).is_err(),
        "flipped byte {i} opened"
    );
});
