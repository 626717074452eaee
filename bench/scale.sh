#!/usr/bin/env bash
# National scale: ten years of synthetic episodes (10,000,000 by default) imported into SQLite
# against DuckDB's durable typed load, the KPIs over ten years and one year against DuckDB's
# query, then on PostgreSQL every programme's submission of a year received, and two crest
# servers behind nginx serving the lead and national dashboards to 32 clients for 60 s. Prints
# a table of figures against their targets. Needs PostgreSQL at CREST_TEST_POSTGRES (default
# postgres://postgres@127.0.0.1:5432/postgres); installs duckdb, nginx and wrk when missing.
# Usage: bash bench/scale.sh [EPISODES] [--parts sqlite|web|sqlite,web]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install -q duckdb
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
fi
episodes="${1:-10000000}"
shift || true
exec python3 bench/scale.py --crest "$CARGO_TARGET_DIR/release/crest" --episodes "$episodes" "$@"
