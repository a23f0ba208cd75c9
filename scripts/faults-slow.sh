#!/usr/bin/env bash
# The fault tests too slow for the suite (they wait out fixed leases), with their figures.
# Today: a `kill -9` during an upstream refresh under the token vault's 30 s lease
# (tests/api/faults.rs, docs/OPERATIONS.md). About 40 s.
#
#   scripts/faults-slow.sh            # uses CARGO_TARGET_DIR if set
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --test api faults:: -- --ignored --nocapture 2>&1 | grep -E 'FIGURES|^test |test result|panicked'
