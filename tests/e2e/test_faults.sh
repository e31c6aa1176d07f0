#!/usr/bin/env bash
# A failing disk: every 5th group commit is rolled back (test hook
# VN_TEST_FAIL_COMMIT_EVERY) while clients post. Callers of a failed batch
# get 503 and nothing of theirs is kept; everything acknowledged is kept
# exactly once; the sequencer's in-memory nonces are rebuilt from the log,
# so nonces stay gap-free, logs verify and VM state matches the log.
. "$(dirname "$0")/lib.sh"
D=$E2E_TMP/node; P=$(free_port)
VN_TEST_FAIL_COMMIT_EVERY=5 start_node "$D" "$P" || exit 1
MID=$("$VMNODE" module create --format vmnode.echo.v1 -o "$E2E_TMP/mod" --post --node "$NODE" 2>/dev/null)
: >"$E2E_TMP/pids"
for _ in $(seq 1 12); do "$VMNODE" spawn --module "$MID" --node "$NODE" 2>/dev/null >>"$E2E_TMP/pids"; done
n=$(wc -l <"$E2E_TMP/pids")
check "some spawns succeed, some are refused by injected failures ($n of 12)" test "$n" -gt 2 -a "$n" -lt 12
head -3 "$E2E_TMP/pids" >"$E2E_TMP/p3"
"$LOADGEN" --node "$NODE" --pids "$E2E_TMP/p3" --count 3000 --concurrency 16 --acked "$E2E_TMP/acked" --quiet >"$E2E_TMP/lg.out"
ok=$(awk '$1=="ok"{print $2}' "$E2E_TMP/lg.out"); failed=$(awk '$1=="failed"{print $2}' "$E2E_TMP/lg.out")
check "acknowledged $ok, refused $failed (both happen)" test "$ok" -gt 0 -a "$failed" -gt 0
check "the node logged the injected failures" grep -q "injected commit failure" "$D.log"

check "every log verifies (gap-free nonces, intact chain)" logs_verify "$E2E_TMP/p3"
check "live VM state matches the log (echo count = nonce + 1)" echo_state_matches "$E2E_TMP/p3"
stop_node
python3 - "$D/vmnode.db" "$E2E_TMP/acked" <<'PY' >"$E2E_TMP/dbcheck"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
acked = [l.split()[0] for l in open(sys.argv[2]) if l.strip()]
bad = [m for m in acked if db.execute("select count(*) from assignments where message_id=?", (m,)).fetchone()[0] != 1]
print("acked_not_once", len(bad))
total = db.execute("select count(*) from assignments a join items i on i.id = a.message_id where i.type='Message'").fetchone()[0]
print("messages_assigned", total)
PY
check "every acknowledged message assigned exactly once" grep -qx 'acked_not_once 0' "$E2E_TMP/dbcheck"
check "no refused message was assigned (assigned = acknowledged = $ok)" grep -qx "messages_assigned $ok" "$E2E_TMP/dbcheck"
start_node "$D" "$P" || exit 1
check "VM state rebuilt after restart matches the log" echo_state_matches "$E2E_TMP/p3"
e2e_finish
