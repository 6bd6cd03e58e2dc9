#!/usr/bin/env bash
# DBSCAN / HDBSCAN agreement with scikit-learn: DIR holds vectors.npy, config.json and
# labels_<i>.npy written by warmstart (see scripts/check_clusters.py); scikit-learn and NumPy
# are installed into .venv when missing. Extra options (--allow-tie-order) go to the checker.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 [--allow-tie-order] DIR" >&2
  exit 2
fi
ARGS=()
for a in "$@"; do
  if [ -d "$a" ]; then ARGS+=("$(cd "$a" && pwd)"); else ARGS+=("$a"); fi
done
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import sklearn, numpy" 2>/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q scikit-learn numpy
fi
exec .venv/bin/python scripts/check_clusters.py "${ARGS[@]}"
