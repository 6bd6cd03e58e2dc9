#!/usr/bin/env bash
# Fuzzes every importer with cargo-fuzz (libFuzzer) for a fixed budget per target, from a corpus
# seeded with the shared data. Needs the nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly --profile minimal && cargo install cargo-fuzz
#
#   scripts/fuzz.sh                    # every target, BUDGET seconds each (60)
#   BUDGET=3600 scripts/fuzz.sh jsonl  # one target for an hour
#
# Targets: jsonl csv html amazon cdrib movielens idx image device (fuzz/fuzz_targets/; image: a
# fashion catalog's photo inside a real images.tar.gz, decoded as the importer verifies it;
# device: the extension's engine on pages, downloaded vectors and neighbour lists, and ranking
# requests, picked by the first byte). Multi-file importers
# read one input split at "\n---\n" into their files. Crashes land in fuzz/artifacts/TARGET/;
# each one found becomes a regression test in the importer's crate. Prints executions per
# target at the end. Env: WARMSTART_DATA (../shared/data), BUDGET, RSS_MB (2048).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${WARMSTART_DATA:-../shared/data}"
BUDGET="${BUDGET:-60}"
RSS_MB="${RSS_MB:-2048}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(jsonl csv html amazon cdrib movielens idx image device)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }

seed() { # target dir
  local t="$1" d="$2"
  mkdir -p "$d"
  [ -n "$(ls -A "$d" 2>/dev/null)" ] && return
  local sep=$'\n---\n'
  case "$t" in
    jsonl)
      printf '%s\n' '{"site":"s","id":"1","title":"Red mug","price":"$12.50","category":"Home > Kitchen","brand":"Acme"}' \
        '{"user":"u1","site":"s","product":"1","kind":"purchase","timestamp":"2024-03-01T12:00:00Z"}' > "$d/seed1"
      ;;
    csv)
      head -n 30 "$DATA/fashion-products/styles.csv" > "$d/seed1" 2>/dev/null || printf 'id,title,price\n1,Mug,3.50\n' > "$d/seed1"
      printf 'u,p,t\nu1,1,1700000000\nu2,2,2024-01-01\n' > "$d/seed2"
      ;;
    html)
      printf '%s' '<html><head><meta property="og:title" content="Lamp"><script type="application/ld+json">{"@type":"Product","name":"Lamp","sku":"L1","offers":{"price":"19.99","priceCurrency":"EUR"}}</script></head><body><div itemscope itemtype="https://schema.org/Product"><span itemprop="name">Chair</span></div></body></html>' > "$d/seed1"
      ;;
    amazon)
      { head -n 20 "$DATA/amazon-art-office/items_art.csv"; printf '%s' "$sep"
        head -n 20 "$DATA/amazon-art-office/items_office.csv"; printf '%s' "$sep"
        head -n 5 "$DATA/amazon-art-office/train.txt"; printf '%s' "$sep"
        head -n 5 "$DATA/amazon-art-office/valid.txt"; printf '%s' "$sep"
        head -n 5 "$DATA/amazon-art-office/test.txt"; printf '%s' "$sep"
        head -n 10 "$DATA/amazon-art-office/users.txt"; } > "$d/seed1"
      ;;
    cdrib)
      { for dom in game video; do for f in train valid test; do
          head -n 20 "$DATA/cdrib-game-video/$dom/$f.txt"; [ "$dom/$f" = video/test ] || printf '%s' "$sep"
        done; done; } > "$d/seed1"
      ;;
    movielens)
      { head -n 20 "$DATA/movielens-100k/u.item"; printf '%s' "$sep"; head -n 50 "$DATA/movielens-100k/u.data"; } > "$d/seed1"
      ;;
    idx)
      local mnist=/usr/share/datasets/fashion-mnist
      if [ -f "$mnist/t10k-labels-idx1-ubyte.gz" ]; then
        cp "$mnist/t10k-labels-idx1-ubyte.gz" "$d/seed1"
        python3 -c "import gzip,sys; sys.stdout.buffer.write(gzip.open('$mnist/t10k-images-idx3-ubyte.gz').read()[:16 + 784 * 3])" > "$d/seed2"
      fi
      printf '\x00\x00\x08\x01\x00\x00\x00\x03\x00\x09\x04' > "$d/seed3"
      ;;
    image)
      # a few real product photos (JPEG) and small PNG/GIF/BMP headers
      python3 - "$DATA/fashion-products/images.tar.gz" "$d" <<'PY' || true
import sys, tarfile
n = 0
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        if m.isfile() and m.size < 20000:
            open(f"{sys.argv[2]}/seed{n}.jpg", "wb").write(t.extractfile(m).read())
            n += 1
            if n == 4:
                break
PY
      printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00' > "$d/seed-png"
      printf 'GIF89a\x01\x00\x01\x00\x00\x00\x00;' > "$d/seed-gif"
      printf 'BM\x1e\x00\x00\x00\x00\x00\x00\x00\x1a\x00\x00\x00\x0c\x00\x00\x00\x01\x00\x01\x00\x01\x00\x18\x00\x00\x00\xff\x00' > "$d/seed-bmp"
      ;;
    device)
      python3 - "$d" <<'PY'
import struct, sys
d = sys.argv[1]
def pad(b): return b + b"\0" * (-len(b) % 4)
ids = b"x\ny"
vec = b"WSVEC001" + struct.pack("<4I", 2, 2, 0, len(ids)) + pad(ids) + struct.pack("<4f", 1, 0, 0, 1) + struct.pack("<2f", 0.5, 0.1)
open(f"{d}/seed-vectors", "wb").write(b"\0" + vec)
t, s = b"p\nq", b"a\tx"
nbr = b"WSNBR001" + struct.pack("<5I", 2, 1, 2, len(t), len(s)) + pad(t) + pad(s) + struct.pack("<2I", 0, 2) + struct.pack("<2I", 1, 0) + struct.pack("<2f", 0.5, 0.25)
open(f"{d}/seed-neighbours", "wb").write(b"\1" + nbr)
page = b'<script type="application/ld+json">{"@type":"Order","acceptedOffer":[{"itemOffered":{"@type":"Product","sku":"7","name":"Shoe"}}]}</script>'
open(f"{d}/seed-page", "wb").write(b"\2" + page)
open(f"{d}/seed-rank", "wb").write(b"\3" + b'{"target":"b","history":[{"site":"a","id":"x","weight":1}],"k":2,"diversity":0.5,"max_price":10}')
open(f"{d}/seed-rank-nbr", "wb").write(b"\3" + b'{"target":"b","model":"neighbours","history":[{"site":"a","id":"x"}],"k":3}')
PY
      ;;
  esac
}

summary=()
for t in "${TARGETS[@]}"; do
  corpus="fuzz/corpus/$t"
  seed "$t" "$corpus"
  log="fuzz/$t.log"
  echo "== $t: ${BUDGET}s"
  status=0
  (cd fuzz && cargo +nightly fuzz run -s none "$t" "corpus/$t" -- \
      -max_total_time="$BUDGET" -rss_limit_mb="$RSS_MB" -timeout=10 -print_final_stats=1) > "$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  summary+=("$t: ${execs:-?} executions in ${BUDGET}s, $(ls "$corpus" | wc -l) corpus inputs, exit $status")
  if [ "$status" -ne 0 ]; then
    grep -E "panicked|ERROR|SUMMARY" "$log" | head -5
    echo "crash input: $(ls -t fuzz/artifacts/$t/ 2>/dev/null | head -1)"
  fi
done
printf '%s\n' "${summary[@]}"
