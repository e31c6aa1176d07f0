#!/usr/bin/env bash
# Run every libFuzzer target in $1/fuzz for $2 seconds each, starting from
# the checked-in seed corpus (tests/fuzz/corpus/<name>) in a scratch copy.
set -u
build=${1:-build}; secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
pass=0; fail=0
for f in "$build"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f"); short=${name#fuzz_}
  work=$(mktemp -d); mkdir -p "$work/corpus"
  [ -d "$here/fuzz/corpus/$short" ] && cp -r "$here/fuzz/corpus/$short/." "$work/corpus/"
  if (cd "$work" && "$OLDPWD/$f" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=0 corpus >"$work/log" 2>&1); then
    pass=$((pass+1)); echo "ok   $name ($(grep -Eo 'cov: [0-9]+' "$work/log" | tail -1))"
  else
    fail=$((fail+1)); echo "FAIL $name"; tail -40 "$work/log"
    cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* . 2>/dev/null
  fi
  rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
