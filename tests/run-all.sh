#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run runs this; `make test` too).
# Install what is missing, build with -Werror, unit tests, end-to-end
# tests against a real node, interop with npm clients, the same unit and e2e
# tests under ASan/UBSan, and bounded libFuzzer runs. Ends with one line
# "N passed, N failed" counting the suites.
set -u
cd "$(dirname "$0")/.."
export VN_SHARED=${VN_SHARED:-$(cd .. && pwd)/shared}
[ -d "$VN_SHARED/vectors" ] || { echo "test vectors not found in $VN_SHARED (set VN_SHARED)"; exit 1; }
bash scripts/deps.sh test || { echo "dependency install failed"; exit 1; }
J=$(nproc 2>/dev/null || echo 2)
pass=0; fail=0; failed=()
suite() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  if "$@"; then pass=$((pass+1)); echo "=== $name: ok ($((SECONDS-t0)) s)"
  else fail=$((fail+1)); failed+=("$name"); echo "=== $name: FAILED ($((SECONDS-t0)) s)"; fi
}
suite build make -s -j"$J" all
suite unit make -s unit
suite e2e make -s e2e
suite interop make -s interop
suite lua bash tests/run-lua.sh
suite asan make -s -j"$J" asan
suite fuzz make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
[ ${#failed[@]} -gt 0 ] && echo "failed suites: ${failed[*]}"
echo "suites: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
