#!/usr/bin/env bash
# The browser extension's tests in a real browser: builds the WebAssembly engine and the test
# build of the extension, the `warmstart` and `warmstart-shops` binaries (test profile, as
# `cargo test` left them), installs playwright-core (npm ci; no browser download) and runs the
# Node tests against Debian's Chromium (CHROMIUM, default /usr/bin/chromium). Figures and
# screenshots go to extension/test/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
export WARMSTART_DATA="${WARMSTART_DATA:-$(cd .. && pwd)/shared/data}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "test_extension: no Chromium at $CHROMIUM (apt-get install chromium)" >&2
  exit 1
fi
./scripts/build_extension.sh --test
cargo build -q --profile test --bin warmstart --bin warmstart-shops
(cd extension && npm ci --no-audit --no-fund --loglevel=error)
export CHROMIUM WARMSTART_BIN_DIR="$PWD/target/debug"
cd extension && node --test --test-concurrency=1 test/*.test.mjs
