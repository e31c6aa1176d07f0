#!/usr/bin/env bash
# End to end with the echo VM: module → spawn → 1,000 signed messages over
# HTTP → every result retrievable, nonces gap-free, the hash chain verifies
# with `vmnode verify-log`, and fails once a stored assignment is altered.
. "$(dirname "$0")/lib.sh"
D=$E2E_TMP/node; P=$(free_port)
start_node "$D" "$P" || exit 1

MID=$("$VMNODE" module create --format vmnode.echo.v1 -o "$E2E_TMP/mod" --post --node "$NODE" 2>/dev/null)
check "module created and posted" test -n "$MID"
PID=$("$VMNODE" spawn --module "$MID" --name e2e --node "$NODE")
check "spawn returns a process id" test ${#PID} -eq 43

out=$("$VMNODE" send "$PID" --action Ping --data hello --wait --node "$NODE")
check "send --wait prints the echo" grep -q '"echo": "hello"' <<<"$out"

"$LOADGEN" --node "$NODE" --pid "$PID" --count 1000 --concurrency 8 --acked "$E2E_TMP/acked" >"$E2E_TMP/lg.out"
check "1000 messages acknowledged" grep -qx 'ok 1000' "$E2E_TMP/lg.out"
check "acked file has 1000 ids" test "$(wc -l <"$E2E_TMP/acked")" -eq 1000

nonce=$(curl -sf "$NODE/nonce/$PID")
check "nonce is 1001 (spawn 0, one send, 1000 messages)" test "$nonce" = 1001

# Every acknowledged message has a result (waits for the executors).
missing=0
while read -r id pid; do
  curl -sf "$NODE/result/$id?process-id=$pid" | grep -q '"Nonce"' || missing=$((missing+1))
done <"$E2E_TMP/acked"
check "every result retrievable ($missing missing)" test "$missing" -eq 0

# Nonces gap-free: results pages cover 0..1001 exactly once.
curl -sf "$NODE/results/$PID?limit=1000" >"$E2E_TMP/p1.json"
cur=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["edges"][-1]["cursor"])' "$E2E_TMP/p1.json")
curl -sf "$NODE/results/$PID?limit=1000&from=$cur" >"$E2E_TMP/p2.json"
check "result pages hold nonces 0..1001 once each" python3 - "$E2E_TMP/p1.json" "$E2E_TMP/p2.json" <<'PY'
import json, sys
ns = []
for f in sys.argv[1:]:
    ns += [e["node"]["Nonce"] for e in json.load(open(f))["edges"]]
sys.exit(0 if ns == list(range(1002)) else 1)
PY

out=$("$VMNODE" verify-log "$PID" --node "$NODE")
check "verify-log over HTTP: OK ($out)" grep -q "^OK .*1002 assignments" <<<"$out"

# Tamper with one stored assignment (flip a byte inside its tags) and with
# the order of two others: verify-log must fail and name the nonce.
stop_node
cp "$D/vmnode.db" "$E2E_TMP/pristine.db"
python3 - "$D/vmnode.db" "$PID" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); pid = sys.argv[2]
raw = bytearray(db.execute("select raw from assignments where pid=? and nonce=500", (pid,)).fetchone()[0])
i = raw.find(b"Timestamp") + 12
raw[i] ^= 1
db.execute("update assignments set raw=? where pid=? and nonce=500", (bytes(raw), pid)); db.commit()
PY
out=$("$VMNODE" verify-log "$PID" --data-dir "$D"); rc=$?
check "verify-log offline detects an altered assignment at 500 ($out)" test $rc -eq 1 -a -n "$(grep 'nonce 500' <<<"$out")"

cp "$E2E_TMP/pristine.db" "$D/vmnode.db"; rm -f "$D/vmnode.db-wal" "$D/vmnode.db-shm"
python3 - "$D/vmnode.db" "$PID" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); pid = sys.argv[2]
# swap the messages of nonces 10 and 11 (a reordered log)
a = db.execute("select message_id from assignments where pid=? and nonce=10", (pid,)).fetchone()[0]
b = db.execute("select message_id from assignments where pid=? and nonce=11", (pid,)).fetchone()[0]
db.execute("update assignments set message_id='tmp' where pid=? and nonce=10", (pid,))
db.execute("update assignments set message_id=? where pid=? and nonce=11", (a, pid))
db.execute("update assignments set message_id=? where pid=? and nonce=10", (b, pid)); db.commit()
PY
out=$("$VMNODE" verify-log "$PID" --data-dir "$D"); rc=$?
check "verify-log detects a reordered log at nonce 10 ($out)" test $rc -eq 1 -a -n "$(grep 'nonce 10' <<<"$out")"

cp "$E2E_TMP/pristine.db" "$D/vmnode.db"; rm -f "$D/vmnode.db-wal" "$D/vmnode.db-shm"
python3 - "$D/vmnode.db" "$PID" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); pid = sys.argv[2]
db.execute("delete from assignments where pid=? and nonce=700", (pid,)); db.commit()
PY
out=$("$VMNODE" verify-log "$PID" --data-dir "$D"); rc=$?
check "verify-log detects a missing assignment ($out)" test $rc -eq 1

cp "$E2E_TMP/pristine.db" "$D/vmnode.db"; rm -f "$D/vmnode.db-wal" "$D/vmnode.db-shm"
start_node "$D" "$P" || exit 1
out=$("$VMNODE" verify-log "$PID" --node "$NODE")
check "restored log verifies again after restart" grep -q "^OK" <<<"$out"
check "process count survives restart" test "$(curl -sf "$NODE/nonce/$PID")" = 1001
e2e_finish
