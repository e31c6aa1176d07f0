#!/usr/bin/env bash
# Interop with the npm clients (arbundles 0.11.2, arweave-js, @permaweb/aoconnect
# 0.0.98): vmnode-signed items verified by arbundles, arbundles-signed items
# verified by vmnode, arbundles items posted to a real `vmnode serve` on
# loopback, and aoconnect's spawn/message/result/dryrun/results plus the
# GraphQL queries of aoconnect and aos against such a node (each test file
# starts and stops its own node).
# Usage: tests/run-interop.sh [BUILD_DIR]   (default $BUILD or build)
# Env: VN_SHARED (shared dir with vectors/, default ../shared from the repo).
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-${BUILD:-build}}
case $build in /*) ;; *) build=$root/$build ;; esac
export BUILD=$build
export VN_SHARED=${VN_SHARED:-$(cd .. && pwd)/shared}
case $VN_SHARED in /*) ;; *) VN_SHARED=$root/$VN_SHARED ;; esac

[ -x "$BUILD/vmnode" ] || { echo "interop: $BUILD/vmnode not found (make first)"; exit 1; }
[ -f "$VN_SHARED/vectors/ans104/keys.json" ] || { echo "interop: vectors not found in $VN_SHARED (set VN_SHARED)"; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "interop: node and npm are needed (scripts/deps.sh test)"; exit 1; }

if [ ! -d tests/interop/node_modules/arbundles ] || [ ! -d tests/interop/node_modules/arweave ] ||
   [ ! -d tests/interop/node_modules/@permaweb/aoconnect ]; then
  echo "interop: installing npm dependencies" >&2
  if [ -f tests/interop/package-lock.json ]; then
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error) || { echo "interop: npm ci failed"; exit 1; }
  else
    (cd tests/interop && npm install --no-audit --no-fund --loglevel=error) || { echo "interop: npm install failed"; exit 1; }
  fi
fi

# Explicit files rather than the directory: newer node versions read --test
# arguments as globs, older ones as directories; files work in both.
shopt -s nullglob
files=(tests/interop/*.test.mjs)
[ ${#files[@]} -gt 0 ] || { echo "interop: no test files"; exit 1; }
timeout 120 node --test "${files[@]}"
