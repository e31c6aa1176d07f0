#!/usr/bin/env bash
# Lua AO processes on a real node: an aos-style session (Eval, Handlers,
# Send/Receive between processes, Inbox, prompt, errors), spawns answered by
# Spawned, bad code (loops, bombs, recursion, handler errors), a killed
# worker, dry-runs that persist nothing, 200 processes at once, and
# determinism: every result rebuilt from the log is byte-identical.
. "$(dirname "$0")/lib.sh"
D=$E2E_TMP/node; P=$(free_port)
start_node "$D" "$P" || exit 1
N=(--node "$NODE")

# field FILE EXPR: a Python expression over the JSON in FILE (as d).
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# say PID ACTION DATA: send and wait; the result is in $E2E_TMP/r.json.
say() { "$VMNODE" send "${N[@]}" --action "$2" --data "$3" --wait -- "$1" >"$E2E_TMP/out" 2>"$E2E_TMP/err"
        tail -n +2 "$E2E_TMP/out" >"$E2E_TMP/r.json"; }
out()   { field "$E2E_TMP/r.json" 'd["Output"]["data"]'; }
err()   { field "$E2E_TMP/r.json" 'd["Error"] or ""'; }
eq()    { [ "$1" = "$2" ] || { echo "    got: $1"; echo "    want: $2"; return 1; }; }
has()   { case $1 in *"$2"*) return 0 ;; esac; echo "    got: $1"; return 1; }

defmod=$(curl -sf "$NODE/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Default-Module"])')
check "GET /info names the built-in Lua module (Default-Module)" test ${#defmod} -eq 43
check "  and GET /modules lists its format" eval 'curl -sf "$NODE/modules" | grep -q vmnode.lua.ao.v1'
check "  and vmnode module ls shows it" eval '"$VMNODE" module ls "${N[@]}" | grep -q "$defmod"'

# ---- an aos-style session ----
A=$("$VMNODE" spawn "${N[@]}" --name alice)
check "spawn with no --module uses the default module" test ${#A} -eq 43
say "$A" Eval '1 + 1'
check "Eval 1 + 1 -> 2" eq "$(out)" 2
check "  the prompt names the process" has "$(field "$E2E_TMP/r.json" 'd["Output"]["prompt"]')" alice
check "  GasUsed is reported" test "$(field "$E2E_TMP/r.json" 'd["GasUsed"]')" -gt 0
say "$A" Eval 'Greeting = "hi"; return Greeting .. " " .. Name'
check "Eval sees its globals and Name" eq "$(out)" "hi alice"
say "$A" Eval 'return {a = 1, b = {2, 3}}'
check "a returned table is pretty-printed" has "$(out)" 'b = {'
say "$A" Eval 'error("oops")'
check "an Eval error is reported in Error" has "$(err)" 'oops'
say "$A" Eval 'return 1 +'
check "a syntax error is reported in Error" has "$(err)" 'eval:1:'
say "$A" Eval 'return #Errors'
check "  and both are kept in Errors" eq "$(out)" 2
say "$A" Eval 'Handlers.add("Hello", function(msg) print("hello " .. msg.Data); msg.reply({Data = "hi " .. msg.From}) end)'
check "Handlers.add by Eval" eq "$(err)" ""
say "$A" Hello 'world'
check "the handler runs on its Action" eq "$(out)" "hello world"
check "  and replies to the sender (one message out)" eq "$(field "$E2E_TMP/r.json" 'len(d["Messages"])')" 1
check "  numbered Sequence 0 (a wallet target: not delivered)" eq "$(field "$E2E_TMP/r.json" 'd["Messages"][0]["Sequence"]')" 0
say "$A" Unknown 'x'
check "an unhandled message goes to the Inbox" has "$(out)" "New Message From"
say "$A" Eval '#Inbox'
check "  #Inbox is 1" eq "$(out)" 1

# Another signer may not Eval.
"$VMNODE" key generate -o "$E2E_TMP/other.key" >/dev/null 2>&1 || python3 -c 'import os; print(os.urandom(32).hex())' >"$E2E_TMP/other.key"
other=$(head -c 66 "$E2E_TMP/other.key" | tr -d '\n')
"$VMNODE" send "${N[@]}" "$A" --action Eval --data 'Owner = "me"' --prvkey "$other" --wait | tail -n +2 >"$E2E_TMP/r.json"
check "an Eval from someone else is refused" has "$(err)" "only the process Owner"

# ---- two processes: Send / Receive ----
B=$("$VMNODE" spawn "${N[@]}" --name bob)
say "$B" Eval 'Handlers.add("Ping", function(msg) msg.reply({Action = "Pong", Data = "pong:" .. msg.Data}) end)'
say "$A" Eval "Handlers.add('Go', function(msg) local r = Send({Target = '$B', Action = 'Ping', Data = msg.Data}).receive(); print('got ' .. r.Data .. ' from ' .. r.From) end)"
say "$A" Go 'ball'
sleep 0.5
resA() { curl -sf "$NODE/results/$A?limit=1&sort=DESC" >"$E2E_TMP/ra.json"; field "$E2E_TMP/ra.json" 'd["edges"][0]["node"]["Output"]["data"]'; }
for _ in $(seq 1 50); do [ "$(resA)" = "got pong:ball from $B" ] && break; sleep 0.1; done
check "ping-pong: A's Receive resumed with B's reply" eq "$(resA)" "got pong:ball from $B"
check "  B saw the ping From A (From-Process)" eval 'curl -sf "$NODE/results/$B?limit=1&sort=DESC" | grep -q "\"From-Process\":\"$A\""'

# ---- spawn from a process ----
say "$A" Eval "Handlers.add('Make', function(msg) local r = Spawn({Data = 'Booted = true', Tags = {['On-Boot'] = 'Data', Name = 'kid'}}).receive(); Kid = r.Process; print('child ' .. r.Process) end)"
say "$A" Make ''
for _ in $(seq 1 50); do kid=$(curl -sf "$NODE/results/$A?limit=1&sort=DESC" | python3 -c 'import json,sys; print(json.load(sys.stdin)["edges"][0]["node"]["Output"]["data"])'); case $kid in child*) break ;; esac; sleep 0.1; done
kid=${kid#child }
check "Spawn(...).receive() gets the Spawned reply with the new pid" test ${#kid} -eq 43
say "$A" Eval "Send({Target = Kid, Action = 'Eval', Data = 'return Booted and Owner'})"
for _ in $(seq 1 50); do r=$(curl -sf "$NODE/results/$kid?limit=1&sort=DESC" | python3 -c 'import json,sys; print(json.load(sys.stdin)["edges"][0]["node"]["Output"]["data"])' 2>/dev/null); [ "$r" = "$A" ] && break; sleep 0.1; done
check "the child booted from On-Boot=Data and its Owner is the parent" eq "$r" "$A"

# ---- bad code ----
X=$("$VMNODE" spawn "${N[@]}" --name victim)
say "$X" Eval 'Count = 1'
say "$X" Eval 'while true do end'
check "an infinite loop ends with a compute-limit Error" has "$(err)" "gas exhausted"
say "$X" Eval 'local s = string.rep("x", 1 << 30) return #s'
check "a string.rep bomb ends with a memory Error" has "$(err)" "not enough memory"
say "$X" Eval 'local t = {} for i = 1, 1e9 do t[i] = {i} end'
check "a table bomb ends with a memory Error" has "$(err)" "not enough memory"
say "$X" Eval 'local function f(n) return f(n + 1) + 1 end return f(1)'
check "runaway recursion ends with stack overflow" has "$(err)" "stack overflow"
say "$X" Eval 'Handlers.add("Bad", function() local t = nil; return t.x end)'
say "$X" Bad ''
check "an error inside a handler names the handler" has "$(err)" 'handler "Bad"'
say "$X" Eval 'Count = Count + 1; return Count'
check "  and the process still works, its state intact" eq "$(out)" 2

# ---- dry-run ----
nonce_before=$(curl -sf "$NODE/nonce/$X")
dr() { curl -sf -X POST "$NODE/dry-run?process-id=$X" -H 'Content-Type: application/json' \
  -d "{\"Target\":\"$X\",\"Owner\":\"someone\",\"Tags\":[{\"name\":\"Action\",\"value\":\"$1\"}],\"Data\":\"$2\"}" >"$E2E_TMP/dr.json"; }
say "$X" Eval 'Handlers.add("Bump", function(m) Count = Count + 1; m.reply({Data = tostring(Count)}) end)'
dr Bump ''
c1=$(field "$E2E_TMP/dr.json" 'd["Messages"][0]["Data"]')
dr Bump ''
c2=$(field "$E2E_TMP/dr.json" 'd["Messages"][0]["Data"]')
check "a dry-run sees the state and changes nothing ($c1, $c2)" test "$c1" = 3 -a "$c2" = 3
check "  and takes no nonce" test "$(curl -sf "$NODE/nonce/$X")" = "$((nonce_before + 1))"

# ---- 200 processes at once (fewer under the sanitizers: each CLI call is slow there) ----
MANY=200; case $BUILD in *asan*) MANY=50 ;; esac
# (plain `wait` would also wait for the node: wait for these jobs only)
jobs_=()
waitj() { local j; for j in "${jobs_[@]}"; do wait "$j"; done; jobs_=(); }
for i in $(seq 1 "$MANY"); do
  "$VMNODE" spawn "${N[@]}" --name "p$i" --data "Id$i = $i" --on-boot >"$E2E_TMP/s.$i.pid" &
  jobs_+=($!); [ $((i % 20)) -eq 0 ] && waitj
done; waitj
cat "$E2E_TMP"/s.*.pid >"$E2E_TMP/many" 2>/dev/null
check "$MANY processes spawned" test "$(sort -u "$E2E_TMP/many" | grep -c .)" -eq "$MANY"
i=0; while read -r pid; do i=$((i+1))
  ( "$VMNODE" send "${N[@]}" "$pid" --action Eval --data "return 6 * 7" --wait | tail -n +2 >"$E2E_TMP/m.$i.json"
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Output"]["data"])' "$E2E_TMP/m.$i.json" >"$E2E_TMP/m.$i.out" ) &
  jobs_+=($!); [ $((i % 25)) -eq 0 ] && waitj
done <"$E2E_TMP/many"; waitj
cat "$E2E_TMP"/m.*.out >"$E2E_TMP/many.out" 2>/dev/null   # one file each: appends from 25 jobs can interleave
check "each of the $MANY answers its Eval" test "$(grep -c '^42$' "$E2E_TMP/many.out")" -eq "$MANY"

# ---- determinism: rebuild every result from the log, compare bytes ----
say "$A" Eval 'T = {}; for i = 1, 60 do T["k" .. i] = i end; local ks = {}; for k in pairs(T) do ks[#ks + 1] = k end; print(table.concat(ks, ",")); return math.random(1, 1000000)'
check "pairs order and math.random run" eq "$(err)" ""
# GET /state/:pid: the worker's heap image (AO CU route)
curl -sf -o "$E2E_TMP/state1" "$NODE/state/$A"
check "GET /state gives the heap image ($(stat -c %s "$E2E_TMP/state1") bytes, at most 1 MiB)" \
  eval '[ "$(head -c 7 "$E2E_TMP/state1")" = VNARENA ] && [ "$(stat -c %s "$E2E_TMP/state1")" -le 1048576 ]'
curl -sf -o "$E2E_TMP/state2" "$NODE/state/$A"
check "  taking it changes nothing (the same bytes twice)" cmp -s "$E2E_TMP/state1" "$E2E_TMP/state2"
check "  unknown process: 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$NODE/state/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")" = 404
stop_node
sqlite3 "$D/vmnode.db" "SELECT pid, nonce, json FROM results ORDER BY pid, nonce" >"$E2E_TMP/results.before"
sqlite3 "$D/vmnode.db" "DELETE FROM results; DELETE FROM cache;"
start_node "$D" "$P" || exit 1
want=$(wc -l <"$E2E_TMP/results.before")
for _ in $(seq 1 300); do
  have=$(sqlite3 "$D/vmnode.db" "SELECT count(*) FROM results" 2>/dev/null || echo 0)
  [ "$have" -ge "$want" ] && break; sleep 0.1
done
sqlite3 "$D/vmnode.db" "SELECT pid, nonce, json FROM results ORDER BY pid, nonce" >"$E2E_TMP/results.after"
check "every result rebuilt from the log is byte-identical ($want results)" cmp -s "$E2E_TMP/results.before" "$E2E_TMP/results.after"
[ -s "$E2E_TMP/results.after" ] || bad "no results after the rebuild"
check "  and no outbox item was delivered twice (nonces unchanged)" test "$(curl -sf "$NODE/nonce/$B")" = 2
curl -sf -o "$E2E_TMP/state3" "$NODE/state/$A"
check "the heap image rebuilt by replay in a new worker is byte-identical" cmp -s "$E2E_TMP/state1" "$E2E_TMP/state3"

# ---- workers killed from outside (last: a kill is not in the log, so the
# rebuild above could not reproduce it) ----
# While idle: not the next message's fault; the node rebuilds the process
# from its log and applies the message.
zyg=$(pgrep -P "$NODE_PID" | head -1)
pkill -9 -P "$zyg"; sleep 0.2
say "$X" Eval 'Count = Count + 1; return Count'
check "a worker killed while idle: the next message still works, state rebuilt" eq "$(out)" 3
# During a message: that message fails clearly and has no effect.
# (a backtracking pattern: seconds inside one C function, which gas does not meter)
"$VMNODE" send "${N[@]}" --action Eval --wait \
  --data 'Count = 100; string.find(string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40))' -- "$X" \
  >"$E2E_TMP/out.kill" 2>&1 &
sender=$!
sleep 0.4; pkill -9 -P "$zyg"
wait "$sender"
tail -n +2 "$E2E_TMP/out.kill" >"$E2E_TMP/r.json"
check "a worker killed during a message gives a vm_failure Error" has "$(err)" "vm_failure"
say "$X" Eval 'Count = Count + 1; return Count'
check "  and the process is rebuilt from its log (the failed message had no effect)" eq "$(out)" 4
check "  the node still answers" eval 'curl -sf "$NODE/info" >/dev/null'

# ---- idle eviction: an idle VM is closed, and comes back on its next message ----
stop_node
start_node "$D" "$P" --vm-idle-ms 1000 || exit 1
say "$X" Eval 'return Count'
check "after a restart the process is rebuilt from its log" eq "$(out)" 4
metric() { curl -sf "$NODE/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
for _ in $(seq 1 60); do [ "$(metric vmnode_vms_running)" = 0 ] && break; sleep 0.1; done
check "an idle VM is evicted after vmIdleMs (vms_running 0, evicted $(metric vmnode_vms_evicted_total))" test "$(metric vmnode_vms_running)" = 0
say "$X" Eval 'Count = Count + 1; return Count'
check "  and its next message brings it back with its state" eq "$(out)" 5

e2e_finish
