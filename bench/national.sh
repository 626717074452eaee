#!/usr/bin/env bash
# National benchmark: every programme of bench/web.sh's 1,000,000-episode store submitted and
# received, then the national dashboard under 32 clients. Run bench/web.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
exec python3 bench/national.py --crest "$CARGO_TARGET_DIR/release/crest"
