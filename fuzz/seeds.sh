#!/usr/bin/env bash
# Writes the starting corpus of every fuzz target (fuzz/corpus/<target>/) from files crest itself
# makes from synthetic data: a few rows as CSV and XLSX, the same as a FHIR Bundle and as
# bulk-export NDJSON, a submission's payload, and an upload form. Run once; the corpus is kept in
# the repository, and what fuzzing finds beyond it is minimised into it with `cargo fuzz cmin`.
# Usage: bash fuzz/seeds.sh [CREST_BINARY]
set -euo pipefail
cd "$(dirname "$0")"
crest="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}/release/crest}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
c() { "$crest" --db "$work/local.sqlite" "$@" >/dev/null; }
rm -rf corpus && mkdir -p corpus/{fields,csv_rows,xlsx_rows,fhir,submission,upload_form}

"$crest" synth --programmes 1 --episodes 6 --seed 3 --from 2024-04-01 --to 2025-03-31 \
  --out "$work/syn" --fhir "$work/syn/fhir" >/dev/null
code="$(sed -n 2p "$work/syn/programmes.csv" | cut -d, -f1)"
# The programme in Wales: no National Data Opt-out check is needed to build its submission.
awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "nation") n = i; print; next } { $n = "wales"; print }' \
  "$work/syn/programmes.csv" > "$work/programmes.csv"
c init
c programmes import "$work/programmes.csv"
c import "$work/syn/episodes.csv"

# Row readers: the synthetic rows, the template, and the same rows as a workbook and as FHIR.
cp "$work/syn/episodes.csv" corpus/csv_rows/episodes.csv
"$crest" template --out corpus/csv_rows/template.csv >/dev/null
"$crest" template --out corpus/xlsx_rows/template.xlsx >/dev/null
c export --programme "$code" --format xlsx --out corpus/xlsx_rows/episodes.xlsx
c export --programme "$code" --format fhir --out "$work/bundle.json"
# The fhir target's first byte picks the name: even for a Bundle (.json), odd for NDJSON.
{ printf '\x00'; cat "$work/bundle.json"; } > corpus/fhir/bundle
{ printf '\x01'; cat "$work"/syn/fhir/*.ndjson; } > corpus/fhir/ndjson

# Field parsers: every cell of the synthetic rows, one file each.
tail -n +2 "$work/syn/episodes.csv" | head -n 1 | tr ',' '\n' | awk 'length > 0' | sort -u |
  while IFS= read -r cell; do printf '%s' "$cell" > "corpus/fields/$(printf '%s' "$cell" | sha1sum | cut -c1-16)"; done
printf '943 476 5919' > corpus/fields/nhs-spaced
printf '31/02/1950' > corpus/fields/date-uk
printf 'SE1 7EH' > corpus/fields/postcode

# A submission's payload (the target signs its own manifest over it).
c agreements add --id ncpcr --recipient "National audit" --legal-basis "CAG 99/CAG/0001" --from 2020-01-01 --to 2099-12-31
"$crest" keys new --out "$work/submission.key" >/dev/null
"$crest" keys new --signing --programme "$code" --out "$work/signing.key" >/dev/null
c submission build --programme "$code" --from 2024-04-01 --to 2025-03-31 \
  --key "$work/submission.key" --signing-key "$work/signing.key" --out "$work/submission.jsonl"
tail -n +2 "$work/submission.jsonl" > corpus/submission/payload

# An upload form as a browser sends it (boundary "crestboundary", as the target reads it).
{
  printf -- '--crestboundary\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nabc\r\n'
  printf -- '--crestboundary\r\nContent-Disposition: form-data; name="file"; filename="episodes.csv"\r\nContent-Type: text/csv\r\n\r\n'
  head -n 3 "$work/syn/episodes.csv"
  printf -- '\r\n--crestboundary--\r\n'
} > corpus/upload_form/csv
{
  printf -- '--crestboundary\r\nContent-Disposition: form-data; name="file"; filename="Patient.ndjson"\r\n\r\n'
  head -n 2 "$work/syn/fhir/Patient.ndjson"
  printf -- '\r\n--crestboundary\r\nContent-Disposition: form-data; name="file"; filename="Condition.ndjson"\r\n\r\n'
  head -n 2 "$work/syn/fhir/Condition.ndjson"
  printf -- '\r\n--crestboundary--\r\n'
} > corpus/upload_form/ndjson
du -sh corpus/*
