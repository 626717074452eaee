#!/usr/bin/env bash
# Submission benchmark: build and receive a signed submission of 100,000 episodes (one
# programme), then a newer one replacing every episode of it, on SQLite (and PostgreSQL when
# reachable). Replacing is timed at a fifth of the size too, and the run fails unless it grows
# linearly (at most 1.5 times the size ratio). Usage: bash bench/submission.sh [EPISODES]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
crest="$CARGO_TARGET_DIR/release/crest"
n="${1:-100000}"
root=bench/out-submission
rm -rf "$root" && mkdir -p "$root"
time_it() { /usr/bin/time -f "%e s, peak %M KiB" "$@"; }
# Seconds a command takes (its output dropped).
seconds() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -n1; }

# Builds, receives and replaces a submission of $1 episodes in $root/$1; prints the seconds
# the replacement took on the last line.
run() {
  local n="$1" out="$root/$1"
  mkdir -p "$out"
  local local_db="$out/local.sqlite" national_db="$out/national.sqlite"
  "$crest" synth --programmes 1 --episodes "$n" --seed 5 --from 2024-04-01 --to 2025-03-31 --out "$out" >/dev/null
  "$crest" --db "$local_db" init >/dev/null
  "$crest" --db "$local_db" programmes import "$out/programmes.csv" >/dev/null
  "$crest" --db "$local_db" import "$out/episodes.csv" >/dev/null
  "$crest" --db "$local_db" agreements add --id bench --recipient "National audit" \
    --legal-basis "CAG 99/CAG/0001" --from 2020-01-01 --to 2099-12-31 >/dev/null
  "$crest" keys new --out "$out/submission.key" >/dev/null
  "$crest" keys new --out "$out/national.key" >/dev/null
  local public
  public="$("$crest" keys new --signing --programme P001 --out "$out/p001.signing" | sed -n 's/^public key: //p')"
  # A National Data Opt-out check result dated today, with one (synthetic) number on it.
  printf 'nhs_number,checked_on\n9000000009,%s\n' "$(date -u +%F)" > "$out/ndoo.csv"
  "$crest" --db "$national_db" init --national >/dev/null
  "$crest" --db "$national_db" programmes import --national "$out/programmes.csv" >/dev/null
  "$crest" --db "$national_db" programmes keys add --programme P001 --public-key "$public" >/dev/null
  local build=("$crest" --db "$local_db" submission build --programme P001 --from 2024-04-01 --to 2025-03-31
    --key "$out/submission.key" --signing-key "$out/p001.signing" --ndoo-opted-out "$out/ndoo.csv")
  local receive=(submission receive --submission-key "$out/submission.key" --national-key "$out/national.key")
  echo "build ($n episodes):" >&2
  time_it "${build[@]}" --out "$out/submission.jsonl" >/dev/null
  echo "receive:" >&2
  time_it "$crest" --db "$national_db" "${receive[@]}" "$out/submission.jsonl" >/dev/null
  ls -l "$out/submission.jsonl" | awk '{print "file:", $5, "bytes"}' >&2
  # A newer submission for the same programme and period (one episode corrected since)
  # replaces every episode of the first.
  python3 -c "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE episodes SET sex = CASE sex WHEN 'male' THEN 'female' ELSE 'male' END WHERE rowid = (SELECT min(rowid) FROM episodes WHERE national_opt_out IS NOT 1)\"); c.commit()" "$local_db"
  "${build[@]}" --out "$out/resubmission.jsonl" >/dev/null
  echo "receive a newer submission replacing it:" >&2
  local t
  t="$(seconds "$crest" --db "$national_db" "${receive[@]}" "$out/resubmission.jsonl")"
  echo "$t s" >&2
  # The same receipts into a PostgreSQL national store, when one is reachable.
  local pg_admin="${CREST_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
  if [ "$n" = "$2" ] && command -v psql >/dev/null && psql "$pg_admin" -qc "DROP DATABASE IF EXISTS crest_bench_national" -c "CREATE DATABASE crest_bench_national" 2>/dev/null; then
    local pg="${pg_admin%/*}/crest_bench_national"
    "$crest" --db "$pg" init --national >/dev/null
    "$crest" --db "$pg" programmes import --national "$out/programmes.csv" >/dev/null
    "$crest" --db "$pg" programmes keys add --programme P001 --public-key "$public" >/dev/null
    echo "receive (PostgreSQL):" >&2
    time_it "$crest" --db "$pg" "${receive[@]}" "$out/submission.jsonl" >/dev/null
    echo "receive a newer submission replacing it (PostgreSQL):" >&2
    time_it "$crest" --db "$pg" "${receive[@]}" "$out/resubmission.jsonl" >/dev/null
  fi
  echo "$t"
}

small=$((n / 5))
t_small="$(run "$small" "$n" | tail -n1)"
t_large="$(run "$n" "$n" | tail -n1)"
python3 - "$small" "$t_small" "$n" "$t_large" <<'EOF'
import sys
small, t_small, large, t_large = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
growth = t_large / max(t_small, 0.01)
limit = 1.5 * large / small
print(f"replacing {small:,} episodes: {t_small:.2f} s; {large:,}: {t_large:.2f} s; "
      f"{growth:.1f}x for {large / small:.0f}x the episodes (linear if at most {limit:.1f}x)")
sys.exit(0 if growth <= limit else 1)
EOF
