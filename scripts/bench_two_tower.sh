#!/usr/bin/env bash
# Two-tower training speed: warmstart (candle) vs the same model in PyTorch (CPU), on the same
# task, features, examples and batch size, in one run. Prints seconds per epoch of each, the
# ratio and examples/s. Run it on an otherwise idle machine.
#
#   scripts/bench_two_tower.sh                         # amazon-art-office, MiniLM content, 3 epochs
#   STORE=path/to/store.sqlite EPOCHS=5 ROUNDS=3 scripts/bench_two_tower.sh
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
# alternating rounds (ours, theirs, ours, theirs, ...): each side's epochs are fresh draws of
# the same examples, exported by ours in the first round
ROUNDS="${ROUNDS:-2}"
results=()
for r in $(seq 1 "$ROUNDS"); do
  results+=("$(./target/release/warmstart-bench two-tower --store "$STORE" --dataset "$DATASET" --out "$WORK" \
    --iterations "$EPOCHS" --vectors "${VECTORS:-minilm}" "$@")")
  results+=("$(.venv-torch/bin/python scripts/two_tower_torch.py "$WORK" --epochs "$EPOCHS" --threads "$THREADS")")
done
python3 - "${results[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(x) for x in sys.argv[1:]]
print(f'{"round":<6} {"":<22} {"s/epoch":>9} {"examples/s":>11} {"loss per epoch"}')
for i, x in enumerate(runs):
    name = "warmstart" if x["framework"] == "warmstart" else "pytorch " + x.get("torch", "")
    print(f'{i // 2 + 1:<6} {name:<22} {x["epoch_seconds_median"]:9.3f} {x["examples_per_second"]:11.0f} '
          f'{" ".join(f"{l:.3f}" for l in x["loss"])}')
ours = statistics.median(x["epoch_seconds_median"] for x in runs[0::2])
theirs = statistics.median(x["epoch_seconds_median"] for x in runs[1::2])
a = runs[0]
print(f'ratio warmstart / pytorch epoch time (median over rounds): {ours / theirs:.2f} '
      f'({ours:.3f} / {theirs:.3f} s; {a["examples"]} examples per epoch, batch {a["batch"]}, {a["threads"]} threads)')
PY
