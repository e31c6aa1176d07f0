#!/usr/bin/env bash
# Quick start: install what is missing (Debian packages), build, and start
# the node on its embedded defaults (API on 127.0.0.1:8080, data in
# ./vmnode-data, a node key generated there on first start).
# Extra arguments go to `vmnode serve` (e.g. --port :9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
make -s -j"$(nproc 2>/dev/null || echo 2)" all
exec build/vmnode serve "$@"
