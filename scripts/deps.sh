#!/usr/bin/env bash
# Install what vmnode needs to build, run and test, from Debian's archive
# (and npm for the JS interop clients). Idempotent: installs only what is
# missing. Usage: scripts/deps.sh [build|test]
set -euo pipefail
mode=${1:-build}

build_pkgs=(build-essential pkg-config libsqlite3-dev libssl-dev libsecp256k1-dev
  libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev libyaml-dev liblua5.4-dev
  libseccomp-dev)
# crun + busybox-static: the container anchor of `make bench` (bench/crun_anchor.sh).
# procps: pgrep/pkill, used by the end-to-end tests to find and kill workers.
test_pkgs=(clang libclang-rt-14-dev libcmocka-dev nodejs npm sqlite3 curl python3 lua5.4
  crun busybox-static procps)

want=("${build_pkgs[@]}")
[ "$mode" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's nodejs may come from elsewhere on some machines: a working node+npm is enough.
if [ "$mode" = test ] && command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do case $p in nodejs|npm) ;; *) tmp+=("$p");; esac; done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -d "$here/tests/interop/node_modules/arbundles" ]; then
    echo "deps: npm install (tests/interop)" >&2
    (cd "$here/tests/interop" && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
