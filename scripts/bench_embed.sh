#!/usr/bin/env bash
# Embedding speed: our MiniLM (candle) against sentence-transformers on PyTorch CPU, same
# texts (Amazon product texts), same batch size, same thread count, in one run; then the
# image throughput of a full-size CLIP ViT-B/32 with seeded random weights on fashion photos.
#
#   scripts/bench_embed.sh                 # 2000 texts, batch 8, 2 threads, 128 images
#   TEXTS=5000 THREADS=4 scripts/bench_embed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"
TEXTS="${TEXTS:-2000}"; BATCH="${BATCH:-8}"; THREADS="${THREADS:-2}"; IMAGES="${IMAGES:-128}"
WORK="${BENCH_DIR:-target/bench}"
mkdir -p "$WORK"
if [ ! -x .venv-st/bin/python ] || ! .venv-st/bin/python -c "import sentence_transformers" 2>/dev/null; then
  python3 -m venv .venv-st
  .venv-st/bin/pip install -q sentence-transformers==6.2.0 numpy
fi
cargo build --release -q --bin warmstart --bin warmstart-bench-embed
STORE="$WORK/embed.sqlite"
./target/release/warmstart --store "$STORE" ingest amazon-art-office "$DATA/amazon-art-office" >/dev/null
MINILM="$(./target/release/warmstart --json models fetch minilm | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
export RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
ours=$(./target/release/warmstart-bench-embed text --store "$STORE" --dataset amazon-art-office \
  --limit "$TEXTS" --batch "$BATCH" --workers "$THREADS" --out "$WORK/embed")
window=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["window_tokens"])' "$ours")
theirs=$(.venv-st/bin/python scripts/bench_embed.py "$WORK/embed" "$MINILM" --batch "$BATCH" --threads "$THREADS" --window "$window" 2>/dev/null)
python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"MiniLM, {a['texts']} Amazon product texts, batch {a['batch']}, {a['threads']} threads ({a['workers']} batch workers), window {a['window_tokens']} tokens")
print(f"  warmstart (candle)          {a['texts_per_second']:8.1f} texts/s   peak RSS {a['peak_rss_mib']:.0f} MiB")
print(f"  sentence-transformers/torch {b['texts_per_second']:8.1f} texts/s   (torch {b['torch']})")
print(f"  ratio ours/theirs           {a['texts_per_second'] / b['texts_per_second']:8.2f}x")
print(f"  cosine(ours, theirs)        min {b['cosine_ours_theirs_min']:.6f}  mean {b['cosine_ours_theirs_mean']:.6f}")
PY
if [ -d "$DATA/fashion-products" ] && [ "$IMAGES" -gt 0 ]; then
  ./target/release/warmstart --store "$STORE" ingest fashion-products "$DATA/fashion-products" --no-verify-images >/dev/null
  clip=$(./target/release/warmstart-bench-embed clip-images --store "$STORE" --limit "$IMAGES" \
    --checkpoint "$WORK/clip-random-vit-b32")
  python3 - "$clip" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"CLIP ViT-B/32 (random weights), {r['images']} fashion photos, batch {r['batch']}, {r['threads']} threads: "
      f"{r['images_per_second']:.1f} images/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
PY
fi
