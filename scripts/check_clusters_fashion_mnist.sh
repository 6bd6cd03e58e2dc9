#!/usr/bin/env bash
# DBSCAN/HDBSCAN agreement with scikit-learn on real data: `warmstart analyze fashion-mnist`
# on the first 500 Fashion-MNIST test images (Debian's dataset-fashion-mnist) exports every
# space it clustered, and scripts/check_clusters.sh re-clusters each with scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."
FM="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ ! -d "$FM" ]; then
  echo "check_clusters_fashion_mnist: $FM missing (apt-get install dataset-fashion-mnist); skipped" >&2
  exit 0
fi
cargo build -q --profile test --bin warmstart
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
./target/debug/warmstart --json analyze fashion-mnist --dir "$FM" --limit "${LIMIT:-500}" --features pixels,hog,texture \
  --export "$WORK/export" --runs-dir "$WORK/runs" >/dev/null
for d in "$WORK"/export/*/; do
  echo "== $(basename "$d")"
  ./scripts/check_clusters.sh --allow-tie-order "$d"
done
