#!/usr/bin/env bash
# Ranking quality of GraphSAGE trained by warmstart and by PyTorch Geometric on the same
# epochs: `warmstart-bench graphsage` exports the Art→Office cold-start task's graphs (each
# epoch's simulated cold start), links and inputs; scripts/graphsage_pyg.py trains PyG's
# SAGEConv on them and saves its weights under warmstart's names; `warmstart eval` then ranks
# the test users with both weight sets the same way (full-neighbourhood inference) and prints
# NDCG@10 and the paired t-test. Both train EPOCHS epochs without early stopping. Only the
# Art→Office lines compare: the PyG weights were trained on that task's data.
#
#   scripts/compare_graphsage_pyg.sh            # 10 epochs
#   EPOCHS=5 scripts/compare_graphsage_pyg.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${STORE:-target/demo/store.sqlite}"
DATASET="${DATASET:-amazon-art-office}"
EPOCHS="${EPOCHS:-10}"
THREADS="${THREADS:-2}"
WORK="${BENCH_DIR:-target/bench}/graphsage-ndcg-$DATASET"
mkdir -p "$WORK"
rm -rf "$WORK"/epoch[0-9]*  # later epochs of an earlier export
scripts/install_torch_cpu.sh
.venv-torch/bin/python -c "import torch_geometric" 2>/dev/null || .venv-torch/bin/pip install -q torch_geometric
cargo build --release -q --bin warmstart-bench --bin warmstart
export RAYON_NUM_THREADS="$THREADS"
./target/release/warmstart-bench graphsage --store "$STORE" --dataset "$DATASET" --task 0 --out "$WORK" \
  --iterations "$EPOCHS" --vectors minilm > "$WORK/ours.json"
.venv-torch/bin/python scripts/graphsage_pyg.py "$WORK" --epochs "$EPOCHS" --threads "$THREADS" \
  --save "$WORK/pyg.safetensors" > "$WORK/pyg.json"
./target/release/warmstart --store "$STORE" eval --dataset "$DATASET" --k 10 --runs-dir "$WORK/runs" \
  --models "graphsage:validation=0:epochs=$EPOCHS,graphsage:validation=0:epochs=0:init=$WORK/pyg.safetensors"
