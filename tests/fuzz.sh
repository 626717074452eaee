#!/usr/bin/env bash
# Fuzzing (cargo fuzz, libFuzzer): every target in fuzz/ runs for CREST_FUZZ_SECONDS seconds
# (default 30) from its kept corpus (fuzz/corpus/<target>, read only; what a run adds goes to a
# scratch folder). A crash fails the run and leaves its input in fuzz/artifacts/<target>/:
# reproduce it with `cargo +nightly fuzz run -s none <target> <file>`, fix it, and add the input
# as a regression test beside the code it broke.
# Targets are built without a sanitizer (-s none): crest forbids unsafe code, so what fuzzing
# looks for is panics, hangs and runaway memory, and an uninstrumented build takes half the time.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${CREST_FUZZ_SECONDS:-30}"
target_dir="${CREST_FUZZ_TARGET_DIR:-$HOME/.cache/crest-fuzz-target}"
if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz"
  cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi
# libFuzzer's instrumentation needs nightly options: the nightly toolchain where rustup has one,
# otherwise the stable compiler told to accept them.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
fuzz() { cargo "${toolchain[@]}" fuzz "$@"; }
fuzz build -s none --target-dir "$target_dir"
for target in $(fuzz list); do
  found="$(mktemp -d)"
  echo "fuzzing $target for ${seconds}s"
  # -rss_limit_mb: a reader that buffers a whole hostile file fails the run;
  # -timeout: so does any single input that takes more than 10 s.
  if ! fuzz run -s none --target-dir "$target_dir" "$target" "$found" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
      -print_final_stats=1 2>"$found.log"; then
    tail -n 60 "$found.log"
    echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "$found.log" | tr '\n' ' '
  echo
  rm -rf "$found" "$found.log"
done
