#!/usr/bin/env bash
# Builds the browser extension: the device engine (crates/device) compiled to WebAssembly and
# the extension's files, into extension/dist/ (load it unpacked in Chromium).
#
#   scripts/build_extension.sh          # extension/dist
#   scripts/build_extension.sh --test   # also extension/dist-test: the same extension whose
#                                       # manifest grants http://*.localhost/* up front, because
#                                       # headless Chromium cannot click the per-shop permission
#                                       # prompt; the extension's own allow list still decides
#                                       # which shops are read
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo build -q -p warmstart-device --target wasm32-unknown-unknown --profile wasm
WASM=target/wasm32-unknown-unknown/wasm/warmstart_device.wasm
rm -rf extension/dist && mkdir -p extension/dist
cp extension/src/* extension/dist/
cp "$WASM" extension/dist/warmstart_device.wasm
echo "extension/dist: $(du -sh extension/dist | cut -f1) ($(stat -c %s "$WASM") bytes of WebAssembly)" >&2
if [ "${1:-}" = "--test" ]; then
  rm -rf extension/dist-test && cp -r extension/dist extension/dist-test
  python3 - <<'PY'
import json
p = "extension/dist-test/manifest.json"
m = json.load(open(p))
m["host_permissions"] = m["host_permissions"] + ["http://*.localhost/*"]
m["name"] = m["name"] + " (test build)"
json.dump(m, open(p, "w"), indent=2)
PY
fi
