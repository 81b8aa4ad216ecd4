#!/usr/bin/env bash
# The fuzzers' bounded run for CI: every target in test/fuzz/targets (or those named: bounded.sh
# http2-server …) for LB_FUZZ_SECONDS (default 30) each, starting from a copy of its committed
# corpus, so CI never writes into the tree. Fails when any target finds anything; the findings are
# printed and left in the temporary directory. Long runs are by hand (test/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${LB_FUZZ_SECONDS:-30}"
work="$(mktemp -d -t lb-fuzz-XXXXXX)"
status=0
targets=()
if [ "$#" -gt 0 ]; then
  for name in "$@"; do
    [ -f "test/fuzz/targets/$name.ts" ] || { echo "fuzz: no target $name in test/fuzz/targets" >&2; exit 2; }
    targets+=("test/fuzz/targets/$name.ts")
  done
else
  targets=(test/fuzz/targets/*.ts)
fi
for path in "${targets[@]}"; do
  name="$(basename "$path" .ts)"
  mkdir -p "$work/corpus/$name" "$work/artifacts/$name"
  if [ -d "test/fuzz/corpus/$name" ]; then cp -r "test/fuzz/corpus/$name/." "$work/corpus/$name/"; fi
  echo "fuzz: $name for ${seconds} s" >&2
  if ! pnpm -s fuzz --target "$path" --seconds "$seconds" --corpus "$work/corpus/$name" --artifacts "$work/artifacts/$name" --stats-every 15; then
    status=1
    for log in "$work/artifacts/$name"/*.log; do [ -f "$log" ] && cat "$log"; done
  fi
done
if [ "$status" = 0 ]; then rm -rf "$work"; else echo "fuzz: findings kept in $work" >&2; fi
exit "$status"
