#!/usr/bin/env bash
# Lua process library tests (runtime/lua). Needs lua5.4 (apt-get install lua5.4).
# Last line: "lua: N passed, N failed"; exit status non-zero on failures.
set -u
cd "$(dirname "$0")/.."
LUA=${LUA:-lua5.4}
command -v "$LUA" >/dev/null || { echo "lua: $LUA not found (apt-get install -y lua5.4)"; echo "lua: 0 passed, 1 failed"; exit 1; }
exec "$LUA" tests/lua/run.lua "$@"
