#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (on the shared data
# in $WARMSTART_DATA, default ../shared/data), and the metric cross-check against an
# independent implementation (pytrec_eval, installed into .venv by this script), and the A/B
# report's statistics against NumPy/SciPy on a simulated experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
export WARMSTART_DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
./scripts/check_metrics.sh
./scripts/check_experiment_stats.sh
./scripts/check_clusters_fashion_mnist.sh
