#!/usr/bin/env bash
# Large bodies sent before signing in: four parallel 500 MB POSTs to /api/v1/submissions with no
# token, then four with an unknown token, against a live server with the national side. Prints
# the server's resident memory before, its peak (VmHWM) and after, and fails if the peak grows
# by more than 300 MB. Usage: bash bench/bodies.sh [MB_PER_BODY]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crest-target}"
cargo build --release -q -p crest
crest="$CARGO_TARGET_DIR/release/crest"
mb="${1:-500}"
out=bench/out-bodies
rm -rf "$out" && mkdir -p "$out"
"$crest" demo --no-serve --programmes 4 --episodes 400 --dir "$out" >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$crest" --db "sqlite:$out/crest-demo.sqlite" serve --addr "127.0.0.1:$port" --uploads "$out/uploads" \
  --national-db "sqlite:$out/crest-national.sqlite" --national-key "$out/national.key" \
  --submission-key "$out/submission.key" >"$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/api/openapi.json" >/dev/null && break
  sleep 0.1
done
rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024)}' "/proc/$server/status"; }
before="$(rss VmRSS)"
send() {
  head -c "$((mb << 20))" /dev/zero | curl -s -o /dev/null -w "%{http_code}\n" \
    -X POST -H "Content-Type: text/plain" "$@" --data-binary @- \
    "http://127.0.0.1:$port/api/v1/submissions" || true
}
for header in "" "Authorization: Bearer not-a-token"; do
  pids=()
  for _ in 1 2 3 4; do
    if [ -n "$header" ]; then send -H "$header" >>"$out/codes" & else send >>"$out/codes" & fi
    pids+=($!)
  done
  wait "${pids[@]}"
done
peak="$(rss VmHWM)" after="$(rss VmRSS)"
echo "answers: $(sort "$out/codes" | uniq -c | tr '\n' ' ')"
echo "server memory: ${before} MB before, peak ${peak} MB, ${after} MB after 8 x ${mb} MB bodies sent without a working token"
[ "$((peak - before))" -le 300 ] || { echo "the peak grew by more than 300 MB" >&2; exit 1; }
