#!/usr/bin/env bash
# The whole test suite, setup included: `scripts/test.sh` as root
# (or `sudo scripts/test.sh` from another user).
# Tests that need root and BPF fail (not skip) when CI=true and BPF is missing.
set -euo pipefail
source "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
scripts/setup.sh
# One-off builds (CI) gain nothing from incremental caches: ~1 GiB less disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads="${LXPROF_TEST_THREADS:-2}"
