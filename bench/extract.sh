#!/usr/bin/env bash
# Extract benchmark: a research extract of 1,000,000 national episodes as CSV and Parquet, time
# and peak memory of each. Usage: bash bench/extract.sh [EPISODES]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
exec python3 bench/extract.py --crest "$CARGO_TARGET_DIR/release/crest" --episodes "${1:-1000000}"
