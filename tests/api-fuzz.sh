#!/usr/bin/env bash
# Fuzzes the live API from its own OpenAPI document with schemathesis (PyPI), once as each
# role that uses it (a programme lead, a national analyst, a commissioner, a researcher): no
# answer may be a server error, and every documented answer must match its schema.
# `.ci/run` runs this after the Rust tests; run it by hand the same way: bash tests/api-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
command -v st >/dev/null || python3 -m pip install --quiet "schemathesis==4.32.5"
cargo build --quiet --bin crest
crest="$CARGO_TARGET_DIR/debug/crest"
dir="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

"$crest" demo --no-serve --programmes 12 --episodes 3000 --dir "$dir" >"$dir/demo.log"
db="sqlite:$dir/crest-demo.sqlite"
for user in demo-lead demo-analyst demo-commissioner demo-researcher; do
  "$crest" --db "$db" users token "$user" --days 1 | grep -o 'crest_pat_[0-9a-f]*' >"$dir/$user.token"
done
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$crest" --db "$db" serve --addr "127.0.0.1:$port" --uploads "$dir/uploads" \
  --national-db "sqlite:$dir/crest-national.sqlite" --national-key "$dir/national.key" \
  --submission-key "$dir/submission.key" >"$dir/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$port/api/openapi.json" >/dev/null && break
  sleep 0.2
done

status=0
for user in demo-lead demo-analyst demo-commissioner demo-researcher; do
  echo "== fuzzing the API as $user"
  st run "http://127.0.0.1:$port/api/openapi.json" \
    --header "Authorization: Bearer $(cat "$dir/$user.token")" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "${FUZZ_EXAMPLES:-15}" --request-timeout 60 --no-color || status=1
done
if grep -q "internal error" "$dir/serve.log"; then
  echo "the server logged internal errors:" >&2
  grep "internal error" "$dir/serve.log" | head -20 >&2
  status=1
fi
exit $status
