#!/usr/bin/env bash
# user-kNN against an independent NumPy/SciPy implementation (scripts/check_userknn.py) on the
# same training matrix and test cases (Amazon Art→Office cold start): the mean NDCG@10 must
# agree within 0.001 and at most 1% of the cases may differ (by the order of tied scores:
# warmstart's evaluation breaks ties at random, the check by item index).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"
if ! .venv/bin/python -c "import numpy, scipy" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q numpy scipy
fi
# the test profile: reuses what `cargo test` just built
cargo build -q --profile test --bin warmstart --bin warmstart-bench
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
./target/debug/warmstart --store "$WORK/s.sqlite" ingest amazon-art-office "$DATA/amazon-art-office" >/dev/null
./target/debug/warmstart-bench export --store "$WORK/s.sqlite" --dataset amazon-art-office --protocol cold-start --out "$WORK/export"
./target/debug/warmstart --store "$WORK/s.sqlite" --json eval --protocol cold-start --dataset amazon-art-office \
  --models userknn --runs-dir "$WORK/runs" >/dev/null
result=$(.venv/bin/python scripts/check_userknn.py "$WORK/export" "$WORK"/runs/*)
echo "$result"
python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
gap = abs(r["ndcg@10 numpy"] - r["ndcg@10 warmstart"])
ok = gap < 0.001 and r["cases that differ"] <= 0.01 * r["cases"]
print(f'user-kNN: NDCG@10 gap {gap:.6f}, {r["cases that differ"]} of {r["cases"]} cases differ: {"ok" if ok else "FAILED"}')
sys.exit(0 if ok else 1)
PY
