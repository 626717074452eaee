#!/usr/bin/env bash
# Submission benchmark: build and receive a submission of 100,000 episodes (one programme),
# on SQLite. Usage: bash bench/submission.sh [EPISODES]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
crest="$CARGO_TARGET_DIR/release/crest"
n="${1:-100000}"
out=bench/out-submission
rm -rf "$out" && mkdir -p "$out"
local_db="$out/local.sqlite" national_db="$out/national.sqlite"
"$crest" synth --programmes 1 --episodes "$n" --seed 5 --from 2024-04-01 --to 2025-03-31 --out "$out" >/dev/null
"$crest" --db "$local_db" init >/dev/null
"$crest" --db "$local_db" programmes import "$out/programmes.csv" >/dev/null
"$crest" --db "$local_db" import "$out/episodes.csv" >/dev/null
"$crest" --db "$local_db" agreements add --id bench --recipient "National audit" \
  --legal-basis "CAG 99/CAG/0001" --from 2020-01-01 --to 2099-12-31 >/dev/null
"$crest" keys new --out "$out/submission.key" >/dev/null
"$crest" keys new --out "$out/national.key" >/dev/null
# A National Data Opt-out check result dated today, with one (synthetic) number on it.
printf 'nhs_number,checked_on\n9000000009,%s\n' "$(date -u +%F)" > "$out/ndoo.csv"
"$crest" --db "$national_db" init --national >/dev/null
"$crest" --db "$national_db" programmes import --national "$out/programmes.csv" >/dev/null
time_it() { /usr/bin/time -f "%e s, peak %M KiB" "$@"; }
echo "build ($n episodes):"
time_it "$crest" --db "$local_db" submission build --programme P001 --from 2024-04-01 --to 2025-03-31 \
  --key "$out/submission.key" --ndoo-opted-out "$out/ndoo.csv" --out "$out/submission.jsonl"
echo "receive:"
time_it "$crest" --db "$national_db" submission receive "$out/submission.jsonl" \
  --submission-key "$out/submission.key" --national-key "$out/national.key"
ls -l "$out/submission.jsonl" | awk '{print "file:", $5, "bytes"}'
# A newer submission for the same programme and period (one episode corrected since) replaces
# every episode of the first.
python3 -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE episodes SET sex = CASE sex WHEN 'male' THEN 'female' ELSE 'male' END WHERE rowid = (SELECT min(rowid) FROM episodes WHERE national_opt_out IS NOT 1)\"); c.commit()" "$local_db"
"$crest" --db "$local_db" submission build --programme P001 --from 2024-04-01 --to 2025-03-31 \
  --key "$out/submission.key" --ndoo-opted-out "$out/ndoo.csv" --out "$out/resubmission.jsonl" >/dev/null
echo "receive a newer submission replacing it:"
time_it "$crest" --db "$national_db" submission receive "$out/resubmission.jsonl" \
  --submission-key "$out/submission.key" --national-key "$out/national.key"
# The same receipt into a PostgreSQL national store, when one is reachable.
pg_admin="${CREST_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
if command -v psql >/dev/null && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS crest_bench_national" -c "CREATE DATABASE crest_bench_national" 2>/dev/null; then
  pg="${pg_admin%/*}/crest_bench_national"
  "$crest" --db "$pg" init --national >/dev/null
  "$crest" --db "$pg" programmes import --national "$out/programmes.csv" >/dev/null
  echo "receive (PostgreSQL):"
  time_it "$crest" --db "$pg" submission receive "$out/submission.jsonl" \
    --submission-key "$out/submission.key" --national-key "$out/national.key"
  echo "receive a newer submission replacing it (PostgreSQL):"
  time_it "$crest" --db "$pg" submission receive "$out/resubmission.jsonl" \
    --submission-key "$out/submission.key" --national-key "$out/national.key"
fi
