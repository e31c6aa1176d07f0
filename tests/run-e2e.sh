#!/usr/bin/env bash
# Run every end-to-end test against a real node; one summary line.
set -u
export BUILD=${1:-build}
pass=0; fail=0
for t in "$(dirname "$0")"/e2e/test_*.sh; do
  echo "== $(basename "$t")"
  out=$(bash "$t" 2>&1); rc=$?
  echo "$out"
  p=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -1)
  [ -n "$p" ] || p="0 passed, 1 failed"
  pass=$((pass + ${p%% passed*}))
  f=${p#*passed, }; fail=$((fail + ${f%% failed}))
  [ $rc -ne 0 ] && [ "${f%% failed}" = 0 ] && fail=$((fail+1))
done
echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
