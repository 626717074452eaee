#!/usr/bin/env bash
# National report benchmark: 1,000,000 national episodes over 230 programmes; the dashboard's first
# and cold renders and the annual report (HTML and PDF). Usage: bash bench/report.sh [EPISODES]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
exec python3 bench/report.py --crest "$CARGO_TARGET_DIR/release/crest" --episodes "${1:-1000000}"
