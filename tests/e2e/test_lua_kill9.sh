#!/usr/bin/env bash
# SIGKILL under load with Lua processes talking to each other: every
# message a process emits is delivered exactly once across node crashes.
# A relays each Ping to B, B answers each relay, A counts the answers per
# ping. After two kills at random moments and a restart, every acknowledged
# Ping is in A's log, B got exactly one relay per Ping A applied, and A got
# exactly one answer per Ping: no message lost, none duplicated.
. "$(dirname "$0")/lib.sh"
D=$E2E_TMP/node; P=$(free_port)
start_node "$D" "$P" || exit 1
N=(--node "$NODE")
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
evalw() { "$VMNODE" send "${N[@]}" "$1" --action Eval --data "$2" --wait | tail -n +2 >"$E2E_TMP/r.json"; }

A=$("$VMNODE" spawn "${N[@]}" --name relay-a)
B=$("$VMNODE" spawn "${N[@]}" --name relay-b)
evalw "$B" 'Handlers.add("Relay", function(m) m.reply({Action = "Back", Data = m.Data}) end)'
evalw "$A" "Got = {}
Handlers.add('Ping', function(m) Send({Target = '$B', Action = 'Relay', Data = m.Id}) end)
Handlers.add('Back', function(m) Got[m.Data] = (Got[m.Data] or 0) + 1 end)"
check "handlers installed" test "$(field "$E2E_TMP/r.json" 'd["Error"] or ""')" = ""

: >"$E2E_TMP/acked"
for round in 1 2; do
  "$LOADGEN" --node "$NODE" --pid "$A" --count 2000 --concurrency 8 --acked "$E2E_TMP/acked.$round" --quiet \
    >/dev/null 2>&1 &
  lg=$!
  # loadgen signs everything first (slow under the sanitizers): wait for
  # the first acknowledgements, then kill at a random moment.
  touch "$E2E_TMP/acked.$round"
  for _ in $(seq 1 600); do [ -s "$E2E_TMP/acked.$round" ] && break; sleep 0.05; done
  sleep "0.$((RANDOM % 6 + 1))"
  kill9_node
  wait "$lg" 2>/dev/null
  cat "$E2E_TMP/acked.$round" >>"$E2E_TMP/acked"
  start_node "$D" "$P" || exit 1
done
awk '{print $1}' "$E2E_TMP/acked" | sort -u >"$E2E_TMP/acked.ids"   # lines: id pid
acked=$(grep -c . "$E2E_TMP/acked.ids")
check "some Pings were acknowledged before the kills ($acked)" test "$acked" -gt 0

# Quiescent: no outbox left, and A's and B's nonces stop moving.
db="$D/vmnode.db"
prev=
for _ in $(seq 1 300); do
  cur="$(curl -sf "$NODE/nonce/$A") $(curl -sf "$NODE/nonce/$B") $(sqlite3 "$db" 'SELECT count(*) FROM outbox' 2>/dev/null)"
  [ "$cur" = "$prev" ] && [ "${cur##* }" = 0 ] && break
  prev=$cur; sleep 0.3
done

q() { sqlite3 "$db" "$1"; }
missing=0
while read -r id; do
  [ "$(q "SELECT count(*) FROM assignments WHERE message_id = '$id' AND pid = '$A'")" = 1 ] || missing=$((missing+1))
done <"$E2E_TMP/acked.ids"
check "every acknowledged Ping is in A's log exactly once ($missing missing)" test "$missing" -eq 0

# A's log: spawn (0), the Eval (1), then Pings and Backs (Backs are signed
# by the node); B's: spawn, Eval, then one Relay per delivered relay.
node_addr=$(curl -sf "$NODE/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Node"]["Acc-Id"])')
nonceA=$(curl -sf "$NODE/nonce/$A")
backs=$(q "SELECT count(*) FROM assignments a JOIN items i ON i.id = a.message_id WHERE a.pid = '$A' AND i.owner = '$node_addr'")
pings=$((nonceA - 1 - backs))
relays=$(( $(curl -sf "$NODE/nonce/$B") - 1 ))
evalw "$A" 'local n, dup = 0, 0 for _, v in pairs(Got) do n = n + 1 if v > 1 then dup = dup + 1 end end return n .. "/" .. dup'
got=$(field "$E2E_TMP/r.json" 'd["Output"]["data"]')
echo "    Pings applied at A: $pings, relays at B: $relays, answers at A: $backs, distinct answered: $got"
check "pings were applied ($pings)" test "$pings" -gt 0
check "B got exactly one relay per Ping A applied" test "$relays" -eq "$pings"
check "A got exactly one answer per Ping" test "$backs" -eq "$pings"
check "  each Ping answered once, none twice" test "$got" = "$pings/0"
check "the outbox is empty" test "$(q 'SELECT count(*) FROM outbox')" = 0
check "both logs verify" eval '"$VMNODE" verify-log "${N[@]}" "$A" >/dev/null && "$VMNODE" verify-log "${N[@]}" "$B" >/dev/null'
check "integrity_check ok" test "$(q 'PRAGMA integrity_check')" = ok
e2e_finish
