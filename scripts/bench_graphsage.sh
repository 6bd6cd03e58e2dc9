#!/usr/bin/env bash
# GraphSAGE training speed and memory: warmstart (candle) vs PyTorch Geometric's SAGEConv
# (CPU) on the same graph, features, fanouts, batch size, objective and links, in one run.
# Prints seconds per epoch of each, the ratio, links/s, the losses and peak RSS. Run it on
# an otherwise idle machine.
#
#   scripts/bench_graphsage.sh                              # amazon-art-office, MiniLM, 3 epochs
#   DATASET=cdrib-game-video VECTORS=none scripts/bench_graphsage.sh
#   scripts/bench_graphsage.sh --param loss=bce --param fanouts=15/10
#
# The store must hold the dataset (and its vectors unless VECTORS=none); the README's
# pipeline command makes target/demo/store.sqlite. PyTorch and torch_geometric are installed
# into .venv-torch from PyPI (scripts/install_torch_cpu.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${STORE:-target/demo/store.sqlite}"
DATASET="${DATASET:-amazon-art-office}"
EPOCHS="${EPOCHS:-3}"
THREADS="${THREADS:-2}"
WORK="${BENCH_DIR:-target/bench}/graphsage-$DATASET"
mkdir -p "$WORK"
scripts/install_torch_cpu.sh
.venv-torch/bin/python -c "import torch_geometric" 2>/dev/null || .venv-torch/bin/pip install -q torch_geometric
cargo build --release -q --bin warmstart-bench
export RAYON_NUM_THREADS="$THREADS"
ours=$(./target/release/warmstart-bench graphsage --store "$STORE" --dataset "$DATASET" --out "$WORK" \
  --iterations "$EPOCHS" --vectors "${VECTORS:-minilm}" "$@")
theirs=$(.venv-torch/bin/python scripts/graphsage_pyg.py "$WORK" --epochs "$EPOCHS" --threads "$THREADS")
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = a["epoch_seconds_median"] / b["epoch_seconds_median"]
print(f'{"":<34} {"s/epoch":>9} {"links/s":>9} {"peak RSS MiB":>13}  loss per epoch')
for r in (a, b):
    print(f'{r["framework"]:<34} {r["epoch_seconds_median"]:>9.2f} {r["links_per_second"]:>9.0f} '
          f'{r["peak_rss_mib"] or 0:>13.0f}  {" ".join(f"{x:.3f}" for x in r["loss"])}')
print(f"ratio warmstart / PyG: {ratio:.2f} (goal: at most 0.5)")
PY
