#!/usr/bin/env bash
# Benchmark: importing 100,000 episodes as FHIR bulk-export NDJSON against the same episodes as
# CSV, each into a fresh SQLite store, release build. Prints each run and the median ratio
# (target: FHIR at most 3x CSV).
# Usage: bash bench/fhir.sh [EPISODES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
crest="$CARGO_TARGET_DIR/release/crest"
episodes="${1:-100000}"
runs="${2:-5}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$crest" synth --programmes 30 --episodes "$episodes" --seed 11 --out "$dir/syn" --fhir "$dir/syn/fhir" >/dev/null
csv_mb=$(du -m "$dir/syn/episodes.csv" | cut -f1)
fhir_mb=$(du -sm "$dir/syn/fhir" | cut -f1)
run() { # $1 = what to import; prints seconds and peak MiB
  rm -f "$dir/db.sqlite"*
  "$crest" --db "$dir/db.sqlite" init >/dev/null
  "$crest" --db "$dir/db.sqlite" programmes import "$dir/syn/programmes.csv" >/dev/null
  /usr/bin/time -f "%e %M" -o "$dir/time" "$crest" --db "$dir/db.sqlite" import "$1" >"$dir/out" 2>&1
  grep -q " 0 rejected" "$dir/out" || { cat "$dir/out"; exit 1; }
  awk '{printf "%s %.0f\n", $1, $2/1024}' "$dir/time"
}
echo "$episodes episodes: CSV ${csv_mb} MB, FHIR NDJSON ${fhir_mb} MB; $(nproc) cores; runs alternate"
csv=(); fhir=()
for i in $(seq 1 "$runs"); do
  read -r c cm < <(run "$dir/syn/episodes.csv")
  read -r f fm < <(run "$dir/syn/fhir")
  echo "run $i: CSV ${c} s (${cm} MiB), FHIR ${f} s (${fm} MiB), ratio $(python3 -c "print(round($f/$c, 2))")"
  csv+=("$c"); fhir+=("$f")
done
python3 - "${csv[*]}" "${fhir[*]}" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]
f = [float(x) for x in sys.argv[2].split()]
mc, mf = statistics.median(c), statistics.median(f)
print(f"median: CSV {mc:.2f} s, FHIR {mf:.2f} s, FHIR/CSV {mf/mc:.2f}x (target <= 3x)")
PY
