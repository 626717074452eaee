#!/usr/bin/env bash
# The test suite: `cargo test --workspace` (arguments are passed on), then the list of what the
# run could not do for want of PostgreSQL, Chromium, poppler or axe-core. In CI (or with the
# CREST_REQUIRE_… variables set) a missing part fails its test instead, so nothing is listed.
set -uo pipefail
cd "$(dirname "$0")/.."
export CREST_SKIPPED_FILE="${CREST_SKIPPED_FILE:-$(mktemp -t crest-skipped.XXXXXX)}"
: > "$CREST_SKIPPED_FILE"
cargo test --workspace "$@"
status=$?
if [ -s "$CREST_SKIPPED_FILE" ]; then
  echo
  echo "Skipped for want of a part ($(sort -u "$CREST_SKIPPED_FILE" | wc -l) tests or halves of tests; install it to run them):"
  sort -u "$CREST_SKIPPED_FILE" | sed 's/^/  /'
else
  echo
  echo "Nothing was skipped."
fi
rm -f "$CREST_SKIPPED_FILE"
exit $status
