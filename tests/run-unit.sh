#!/usr/bin/env bash
# Run every unit test binary in $1/tests; print one "N passed, N failed" line.
set -u
build=${1:-build}
export VN_SHARED=${VN_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
pass=0; fail=0
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  if out=$("$t" 2>&1); then pass=$((pass+1)); echo "ok   $(basename "$t")"
  else fail=$((fail+1)); echo "FAIL $(basename "$t")"; echo "$out" | tail -40; fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
