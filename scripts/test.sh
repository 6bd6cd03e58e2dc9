#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (on the shared data
# in $WARMSTART_DATA, default ../shared/data), and the metric cross-check against an
# independent implementation (pytrec_eval, installed into .venv by this script), user-kNN
# against an independent NumPy/SciPy one on the same cases, and the A/B
# report's statistics against NumPy/SciPy on a simulated experiment. The PostgreSQL backend's
# tests run when WARMSTART_TEST_POSTGRES names a server (`eval "$(scripts/pg.sh start)"`;
# .ci/run does this and sets WARMSTART_REQUIRE_POSTGRES=1 so that they cannot skip), and the
# browser extension's tests in Debian's Chromium (scripts/test_extension.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export WARMSTART_DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
./scripts/check_metrics.sh
./scripts/check_userknn.sh
./scripts/check_experiment_stats.sh
./scripts/check_clusters_fashion_mnist.sh
./scripts/test_extension.sh
