#!/usr/bin/env bash
# GraphSAGE training speed and memory: warmstart (candle) vs PyTorch Geometric's SAGEConv
# (CPU) on the same graph, features, fanouts, batch size, objective and links, in one run.
# Prints seconds per epoch of each, the ratio, links/s, the losses and peak RSS. Run it on
# an otherwise idle machine; ROUNDS (default 2) alternates the two so both see the same
# machine state.
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
rm -rf "$WORK"/epoch[0-9]*  # later epochs of an earlier export
scripts/install_torch_cpu.sh
.venv-torch/bin/python -c "import torch_geometric" 2>/dev/null || .venv-torch/bin/pip install -q torch_geometric
cargo build --release -q --bin warmstart-bench
export RAYON_NUM_THREADS="$THREADS"
# ROUNDS alternating rounds of three runs, so all see the same machine state:
#   warmstart: THREADS compute threads + its sampler thread;
#   PyG with a sampler worker: THREADS intra-op threads + one DataLoader worker process
#   sampling the next batches (the same thread budget);
#   PyG sampling in the loop: THREADS intra-op threads, sampling between steps (timed).
ROUNDS="${ROUNDS:-2}"
runs=()
for _ in $(seq "$ROUNDS"); do
  runs+=("$(./target/release/warmstart-bench graphsage --store "$STORE" --dataset "$DATASET" --out "$WORK" \
    --iterations "$EPOCHS" --vectors "${VECTORS:-minilm}" "$@")")
  runs+=("$(.venv-torch/bin/python scripts/graphsage_pyg.py "$WORK" --epochs "$EPOCHS" --threads "$THREADS" --sampler-workers 1)")
  runs+=("$(.venv-torch/bin/python scripts/graphsage_pyg.py "$WORK" --epochs "$EPOCHS" --threads "$THREADS" --sampler-workers 0)")
done
python3 - "${runs[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(x) for x in sys.argv[1:]]
print(f'{"":<58} {"s/epoch":>9} {"links/s":>9} {"peak RSS MiB":>13}  loss per epoch')
for r in runs:
    print(f'{r["framework"]:<58} {r["epoch_seconds_median"]:>9.2f} {r["links_per_second"]:>9.0f} '
          f'{r["peak_rss_mib"] or 0:>13.0f}  {" ".join(f"{x:.3f}" for x in r["loss"])}')
ours = [r["epoch_seconds_median"] for r in runs[0::3]]
for name, theirs in [("PyG with a sampler worker (same thread budget)", [r["epoch_seconds_median"] for r in runs[1::3]]),
                     ("PyG sampling in the loop", [r["epoch_seconds_median"] for r in runs[2::3]])]:
    rounds = " ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs))
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"ratio warmstart / {name} per round: {rounds}; of the medians: {ratio:.2f} (goal: at most 0.5)")
PY
