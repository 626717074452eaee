#!/usr/bin/env bash
# Benchmark: 1,000,000 synthetic episodes; crest import + kpis on SQLite vs DuckDB as baseline.
# Usage: bash bench/run.sh [EPISODES] [PROGRAMMES]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
python3 -c "import duckdb" 2>/dev/null || pip install -q duckdb
exec python3 bench/bench.py --crest "$CARGO_TARGET_DIR/release/crest" --episodes "${1:-1000000}" --programmes "${2:-230}"
