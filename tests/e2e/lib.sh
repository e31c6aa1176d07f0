# lib.sh - helpers for the end-to-end tests: a real `vmnode serve` on
# loopback with its own data dir, driven with the vmnode CLI, curl and
# loadgen. Source it; set BUILD first.
set -u
: "${BUILD:=build}"
VMNODE=${VMNODE:-$BUILD/vmnode}
LOADGEN=${LOADGEN:-$BUILD/loadgen}
E2E_PASS=0
E2E_FAIL=0
E2E_TMP=$(mktemp -d /tmp/vmnode-e2e.XXXXXX)
export XDG_CONFIG_HOME=$E2E_TMP/xdg   # CLI wallet goes here, not in ~
NODE_PID=

ok()   { E2E_PASS=$((E2E_PASS+1)); echo "  ok   $*"; }
bad()  { E2E_FAIL=$((E2E_FAIL+1)); echo "  FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_node DATADIR PORT [extra serve flags...]
start_node() {
  local dir=$1 port=$2; shift 2
  "$VMNODE" serve --data-dir "$dir" --port "127.0.0.1:$port" "$@" >>"$dir.log" 2>&1 &
  NODE_PID=$!
  NODE="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do
    curl -sf "$NODE/info" >/dev/null 2>&1 && return 0
    kill -0 "$NODE_PID" 2>/dev/null || { echo "node exited:"; tail -20 "$dir.log"; return 1; }
    sleep 0.05
  done
  echo "node did not answer"; tail -20 "$dir.log"; return 1
}

stop_node() { [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null; NODE_PID=; }
kill9_node() { [ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null; wait "$NODE_PID" 2>/dev/null; NODE_PID=; }

# logs_verify PIDFILE: `vmnode verify-log` passes for every process listed
# (prints the failures). For use with check.
logs_verify() {
  local pid out rc=0
  while read -r pid; do
    out=$("$VMNODE" verify-log "$pid" --node "$NODE" 2>&1) || { echo "    $out"; rc=1; }
  done <"$1"
  return $rc
}

# echo_state_matches PIDFILE: the echo VM counts the messages it applied, so
# for every process listed its latest result's Output.count must equal the
# process's nonce + 1 (VM state is a function of the log).
echo_state_matches() {
  local pid nonce cnt rc=0
  while read -r pid; do
    nonce=$(curl -sf "$NODE/nonce/$pid")
    cnt=$(curl -sf "$NODE/results/$pid?sort=DESC&limit=1" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["edges"][0]["node"]["Output"]["count"])')
    [ "$cnt" = "$((nonce + 1))" ] || { echo "    $pid: nonce $nonce, echo count $cnt"; rc=1; }
  done <"$1"
  return $rc
}

e2e_finish() {
  stop_node
  # Under ASan/UBSan the node writes its reports to its log: any is a failure.
  if grep -l -E "Sanitizer|runtime error:" "$E2E_TMP"/*.log >/dev/null 2>&1; then
    bad "sanitizer reports in the node log:"; grep -h -A12 -E "Sanitizer|runtime error:" "$E2E_TMP"/*.log | head -60
  else
    ok "no sanitizer reports in the node logs"
  fi
  echo "$(basename "$0" .sh): $E2E_PASS passed, $E2E_FAIL failed"
  [ "$E2E_FAIL" -eq 0 ] && rm -rf "$E2E_TMP"
  [ "$E2E_FAIL" -eq 0 ]
}
trap 'stop_node' EXIT
