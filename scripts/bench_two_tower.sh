#!/usr/bin/env bash
# Two-tower training speed: warmstart (candle) vs the same model in PyTorch (CPU), on the same
# task, features, examples and batch size, in one run. Prints seconds per epoch of each, the
# ratio and examples/s. Run it on an otherwise idle machine.
#
#   scripts/bench_two_tower.sh                         # amazon-art-office, MiniLM content, 3 epochs
#   STORE=path/to/store.sqlite EPOCHS=5 scripts/bench_two_tower.sh
#
# The store must hold the dataset and its `minilm` vectors (the README's pipeline command
# makes target/demo/store.sqlite). PyTorch is installed into .venv-torch from PyPI
# (scripts/install_torch_cpu.sh, ~4 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE="${STORE:-target/demo/store.sqlite}"
DATASET="${DATASET:-amazon-art-office}"
EPOCHS="${EPOCHS:-3}"
THREADS="${THREADS:-2}"
WORK="${BENCH_DIR:-target/bench}/two-tower-$DATASET"
mkdir -p "$WORK"
scripts/install_torch_cpu.sh
cargo build --release -q --bin warmstart-bench
export RAYON_NUM_THREADS="$THREADS"
ours=$(./target/release/warmstart-bench two-tower --store "$STORE" --dataset "$DATASET" --out "$WORK" \
  --iterations "$EPOCHS" --vectors "${VECTORS:-minilm}" "$@")
theirs=$(.venv-torch/bin/python scripts/two_tower_torch.py "$WORK" --epochs "$EPOCHS" --threads "$THREADS")
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = a["epoch_seconds_median"] / b["epoch_seconds_median"]
print(f'{"":<12} {"s/epoch":>9} {"examples/s":>11} {"loss per epoch"}')
for x, name in [(a, "warmstart"), (b, "pytorch " + b.get("torch", ""))]:
    print(f'{name:<12} {x["epoch_seconds_median"]:9.2f} {x["examples_per_second"]:11.0f} {" ".join(f"{l:.3f}" for l in x["loss"])}')
print(f'ratio warmstart / pytorch epoch time: {ratio:.2f} ({a["examples"]} examples, batch {a["batch"]}, {a["threads"]} threads)')
PY
