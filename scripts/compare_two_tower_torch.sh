#!/usr/bin/env bash
# Ranking quality of the two-tower model trained by warmstart and by the PyTorch
# re-implementation on the same epochs: `warmstart-bench two-tower` exports the Art→Office
# cold-start task's training data (every epoch's draw of examples, the features, the
# optimiser's constants); scripts/two_tower_torch.py trains on them and saves its weights under
# warmstart's names; `warmstart eval` then ranks the test users with both weight sets the same
# way and prints NDCG@10 and the paired t-test. Both train EPOCHS epochs without validation or
# early stopping. Only the Art→Office lines compare: the PyTorch weights were trained on that
# task's data.
#
#   scripts/compare_two_tower_torch.sh            # 10 epochs
#   EPOCHS=5 scripts/compare_two_tower_torch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${STORE:-target/demo/store.sqlite}"
DATASET="${DATASET:-amazon-art-office}"
EPOCHS="${EPOCHS:-10}"
THREADS="${THREADS:-2}"
WORK="${BENCH_DIR:-target/bench}/two-tower-ndcg-$DATASET"
mkdir -p "$WORK"
scripts/install_torch_cpu.sh
cargo build --release -q --bin warmstart-bench --bin warmstart
export RAYON_NUM_THREADS="$THREADS"
./target/release/warmstart-bench two-tower --store "$STORE" --dataset "$DATASET" --task 0 --out "$WORK" \
  --iterations "$EPOCHS" --vectors minilm > "$WORK/ours.json"
.venv-torch/bin/python scripts/two_tower_torch.py "$WORK" --epochs "$EPOCHS" --threads "$THREADS" \
  --save "$WORK/torch.safetensors" > "$WORK/torch.json"
./target/release/warmstart --store "$STORE" eval --dataset "$DATASET" --k 10 --runs-dir "$WORK/runs" \
  --models "two-tower:validation=0:epochs=$EPOCHS,two-tower:validation=0:epochs=0:init=$WORK/torch.safetensors"
