#!/usr/bin/env bash
# Kill the node with SIGKILL while clients are posting, several times at
# random moments. After each restart: every message that got a 200 is
# present and assigned exactly once, nonces are gap-free (the log verifies),
# results catch up, and the SQLite file passes integrity_check.
. "$(dirname "$0")/lib.sh"
D=$E2E_TMP/node; P=$(free_port)
ROUNDS=${KILL_ROUNDS:-4}
start_node "$D" "$P" || exit 1
MID=$("$VMNODE" module create --format vmnode.echo.v1 -o "$E2E_TMP/mod" --post --node "$NODE" 2>/dev/null)
: >"$E2E_TMP/pids"
for i in 1 2 3 4 5; do "$VMNODE" spawn --module "$MID" --node "$NODE" >>"$E2E_TMP/pids"; done
check "5 processes spawned" test "$(wc -l <"$E2E_TMP/pids")" -eq 5

for r in $(seq 1 "$ROUNDS"); do
  "$LOADGEN" --node "$NODE" --pids "$E2E_TMP/pids" --count 4000 --concurrency 16 \
     --acked "$E2E_TMP/acked" --quiet >"$E2E_TMP/lg.$r" 2>&1 &
  LG=$!
  # Kill at a random moment once acknowledgements are flowing (the client
  # signs its messages first, which takes a while under sanitizers).
  touch "$E2E_TMP/acked"; before=$(wc -l <"$E2E_TMP/acked")
  for _ in $(seq 1 300); do [ "$(wc -l <"$E2E_TMP/acked")" -gt "$before" ] && break; sleep 0.05; done
  sleep "0.$((RANDOM % 6))"
  kill9_node
  wait "$LG"
  start_node "$D" "$P" || exit 1
done
acked=$(wc -l <"$E2E_TMP/acked")
check "some messages were acknowledged before the kills ($acked)" test "$acked" -gt 0

python3 - "$D/vmnode.db" "$E2E_TMP/acked" <<'PY' >"$E2E_TMP/dbcheck" 2>&1
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
acked = [l.split()[0] for l in open(sys.argv[2]) if l.strip()]
missing = [m for m in acked if db.execute("select count(*) from assignments where message_id=?", (m,)).fetchone()[0] != 1]
print("missing_or_duplicated", len(missing))
bad = 0
for (pid,) in db.execute("select pid from processes"):
    ns = [n for (n,) in db.execute("select nonce from assignments where pid=? order by nonce", (pid,))]
    if ns != list(range(len(ns))): bad += 1
print("processes_with_gaps", bad)
print("integrity", db.execute("pragma integrity_check").fetchone()[0])
PY
check "every acknowledged message assigned exactly once" grep -qx 'missing_or_duplicated 0' "$E2E_TMP/dbcheck"
check "nonces gap-free in every process" grep -qx 'processes_with_gaps 0' "$E2E_TMP/dbcheck"
check "SQLite integrity_check ok" grep -qx 'integrity ok' "$E2E_TMP/dbcheck"

check "every process log verifies after the kills" logs_verify "$E2E_TMP/pids"

missing=0
while read -r id pid; do
  curl -sf "$NODE/result/$id?process-id=$pid" | grep -q '"Nonce"' || missing=$((missing+1))
done < <(shuf -n 300 "$E2E_TMP/acked")
check "results rebuilt for acknowledged messages (sample of 300, $missing missing)" test "$missing" -eq 0

# Results are a pure function of the log: count of each echo VM equals nonce + 1.
check "replayed VM state matches the log (echo count = nonce + 1)" echo_state_matches "$E2E_TMP/pids"
e2e_finish
