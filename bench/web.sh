#!/usr/bin/env bash
# Web benchmark: a ~10,000-episode programme's dashboard in a 1,000,000-episode store, 32 clients.
# Usage: bash bench/web.sh [EPISODES] [PROGRAMMES]   (reuses bench/out-web/web.sqlite if present)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
exec python3 bench/web.py --crest "$CARGO_TARGET_DIR/release/crest" --episodes "${1:-1000000}" --programmes "${2:-230}"
