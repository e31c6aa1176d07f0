#!/usr/bin/env bash
# Benchmarks of the node core, each printed beside its anchor measured in
# the same run (this machine is shared and noisy: medians over ROUNDS runs,
# ratios rather than absolutes).
#
#  1. crypto bound: secp256k1 public-key recovery (verify) + one node
#     signature (the assignment) per message, per core × cores. No node can
#     accept signed messages faster than this on this machine.
#  2. end-to-end throughput of signed type-3 messages over HTTP (POST /,
#     answered after the assignment is durable) into 1 process and into 100
#     processes: messages/s, p50/p99 latency, and the ratio to the bound.
#
#  3. the Lua VM on the apply path alone (build/lua_bench: no HTTP, no
#     SQLite): spawn-to-first-result latency, messages/s for 1 and 100
#     processes, idle memory per process, image size; beside the container
#     anchor (bench/crun_anchor.sh: `crun run` of a busybox /bin/true
#     bundle) measured in the same rounds, and beside AO's figures as quoted
#     in the issue (not measured here).
#
# usage: bench/run.sh [BUILD]   env: ROUNDS (3), COUNT (20000), CONC (32),
#   LUA_ROUNDS (5), ONLY (core | lua: run one part)
set -u
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}; COUNT=${COUNT:-20000}; CONC=${CONC:-32}
LUA_ROUNDS=${LUA_ROUNDS:-5}; ONLY=${ONLY:-}
VMNODE=$BUILD/vmnode
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/vmnode-bench.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg
NODE_PID=
trap '[ -n "$NODE_PID" ] && kill $NODE_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# Nearest-rank percentile of the numbers on stdin: pctl 99
pctl() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i=int(p/100*NR+0.999999); if(i<1)i=1; if(i>NR)i=NR; print a[i]}'; }
val() { awk -v k="$1" '$1==k {print $2}' "$2"; }
# The median over rounds of key k in files $TMP/<prefix>.<round>: rmed prefix k
rmed() { for r in $(seq 1 "$LUA_ROUNDS"); do val "$2" "$TMP/$1.$r"; done | median; }
rmin() { for r in $(seq 1 "$LUA_ROUNDS"); do val "$2" "$TMP/$1.$r"; done | sort -g | head -1; }
rmax() { for r in $(seq 1 "$LUA_ROUNDS"); do val "$2" "$TMP/$1.$r"; done | sort -g | tail -1; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }
goal() { awk -v a="$1" -v b="$2" 'BEGIN{print (a >= b) ? "met" : "NOT met"}'; } # goal value wanted

# AO's figures, quoted from the issue (ao-loader with the real aos module),
# not measured here.
AO_MSGS_PER_S=175; AO_SPAWN_MS=220; AO_IMAGE_MIB=8.8

lua_section() {
  echo "# Lua VM, apply path only (build/lua_bench: no HTTP, no SQLite), $LUA_ROUNDS rounds; each round runs the crun anchor, then the Lua VM"
  local crun_ok=1 r
  : >"$TMP/spawn.samples"
  for r in $(seq 1 "$LUA_ROUNDS"); do
    bash "$HERE/crun_anchor.sh" 30 >"$TMP/crun.$r"
    grep -q '^SKIP' "$TMP/crun.$r" && crun_ok=0
    # crun_run_true: p50=… ms p99=… ms n=30  ->  key value lines
    sed -n 's/^crun_run_true: p50=\([0-9.]*\) ms p99=\([0-9.]*\) ms.*/crun.p50_ms \1\ncrun.p99_ms \2/p' \
      "$TMP/crun.$r" >"$TMP/crunkv.$r"
    "$BUILD/lua_bench" --samples "$TMP/spawn.samples" >"$TMP/lua.$r" 2>"$TMP/lua.$r.err" ||
      { echo "lua_bench failed in round $r:"; tail -5 "$TMP/lua.$r.err"; return 1; }
  done
  [ "$(val lua.backend "$TMP/lua.1")" = lua ] || { echo "lua_bench: no Lua backend built in"; return 1; }
  local note; note=$(grep '^lua.sandbox_note' "$TMP/lua.1" | cut -d' ' -f2-)
  echo "sandbox  workers in namespaces + seccomp: ${note:-?}"

  local sp50 sp99 ns cp50 cp99 ratio
  sp50=$(pctl 50 <"$TMP/spawn.samples"); sp99=$(pctl 99 <"$TMP/spawn.samples")
  ns=$(wc -l <"$TMP/spawn.samples")
  if [ "$crun_ok" = 1 ]; then
    cp50=$(rmed crunkv crun.p50_ms); cp99=$(rmed crunkv crun.p99_ms)
    # Side by side: crun p50 / Lua spawn p50 of the same round, median over rounds.
    ratio=$(for r in $(seq 1 "$LUA_ROUNDS"); do
      calc "%.2f\n" "$(val crun.p50_ms "$TMP/crunkv.$r") / $(val lua.spawn_p50_ms "$TMP/lua.$r")"
    done | median)
    printf "anchor   crun run of a busybox /bin/true bundle: p50 %.2f ms  p99 %.2f ms (median of %d rounds x 30 runs)\n" \
      "$cp50" "$cp99" "$LUA_ROUNDS"
  else
    echo "anchor   crun: $(grep -h '^SKIP' "$TMP"/crun.* | head -1)"
  fi
  echo "quoted   AO (ao-loader, real aos module; quoted from the issue, not measured here): ${AO_MSGS_PER_S} msg/s per process (~5.9 ms/message), spawn ~${AO_SPAWN_MS} ms, ${AO_IMAGE_MIB} MiB image per process"

  printf "spawn->first result  p50 %6.2f ms  p99 %6.2f ms (%d spawns: spawn + nonce 0 + Eval 1 + 1)\n" "$sp50" "$sp99" "$ns"
  printf "         steps (p50, median of rounds): worker %.2f ms, nonce 0 %.2f ms, Eval %.2f ms; %s page faults per new worker\n" \
    "$(rmed lua lua.spawn_vm_p50_ms)" "$(rmed lua lua.spawn_nonce0_p50_ms)" "$(rmed lua lua.spawn_eval_p50_ms)" \
    "$(rmed lua lua.spawn_worker_faults_p50)"
  [ "$crun_ok" = 1 ] &&
    printf "         %5.1fx faster than crun run, same rounds (goal >= 10x: %s)\n" "$ratio" "$(goal "$ratio" 10)"
  local ao_sp; ao_sp=$(calc "%.1f" "$AO_SPAWN_MS / $sp50")
  printf "         %5.1fx faster than AO's quoted %d ms (goal >= 100x: %s)\n" "$ao_sp" "$AO_SPAWN_MS" "$(goal "$ao_sp" 100)"

  local m1 m1lo m1hi l50 l99 x1 m100 m100lo m100hi x100
  m1=$(rmed lua lua.msgs1_per_s); m1lo=$(rmin lua lua.msgs1_per_s); m1hi=$(rmax lua lua.msgs1_per_s)
  l50=$(rmed lua lua.msg1_p50_us); l99=$(rmed lua lua.msg1_p99_us)
  x1=$(calc "%.1f" "$m1 / $AO_MSGS_PER_S")
  printf "1 process      %6.0f msg/s (rounds %s..%s)  per message p50 %.0f us  p99 %.0f us  = %5.1fx AO's quoted %d msg/s (goal >= 50x: %s)\n" \
    "$m1" "$m1lo" "$m1hi" "$l50" "$l99" "$x1" "$AO_MSGS_PER_S" "$(goal "$x1" 50)"
  m100=$(rmed lua lua.msgs100_per_s); m100lo=$(rmin lua lua.msgs100_per_s); m100hi=$(rmax lua lua.msgs100_per_s)
  x100=$(calc "%.1f" "$m100 / $AO_MSGS_PER_S")
  printf "100 processes  %6.0f msg/s (rounds %s..%s)  %s threads, round-robin      = %5.1fx AO's quoted %d msg/s per process\n" \
    "$m100" "$m100lo" "$m100hi" "$(val lua.msgs100_threads "$TMP/lua.1")" "$x100" "$AO_MSGS_PER_S"

  local pss rss priv
  pss=$(rmed lua lua.pss_per_proc_kib); rss=$(rmed lua lua.rss_per_proc_kib); priv=$(rmed lua lua.private_per_proc_kib)
  if [ -n "$pss" ]; then
    printf "idle memory    Pss %.0f KiB per process (private %.0f KiB, Rss %.0f KiB incl. pages shared with the zygote; 100 workers) (goal Pss <= 1024 KiB: %s)\n" \
      "$pss" "$priv" "$rss" "$(goal 1024 "$pss")"
  fi
  local img imgh
  img=$(rmed lua lua.image_fresh_bytes); imgh=$(rmed lua lua.image_handler_bytes)
  printf "image          %.0f KiB fresh (after nonce 0), %.0f KiB with a handler = %.1fx smaller than AO's quoted %s MiB (goal <= 1024 KiB: %s)\n" \
    "$(calc "%.1f" "$img / 1024")" "$(calc "%.1f" "$imgh / 1024")" "$(calc "%.1f" "$AO_IMAGE_MIB * 1048576 / $img")" \
    "$AO_IMAGE_MIB" "$(goal 1048576 "$img")"
}

if [ "$ONLY" = lua ]; then lua_section; exit; fi

echo "# vmnode core benchmark ($(date -u +%FT%TZ), $(nproc) cores, $ROUNDS rounds, $COUNT messages, concurrency $CONC)"
for r in $(seq 1 "$ROUNDS"); do "$BUILD/crypto_bound" 3000 >"$TMP/crypto.$r"; done
cores=$(val crypto.cores "$TMP/crypto.1")
rs_ops=$(for r in $(seq 1 "$ROUNDS"); do val crypto.recover_sign_ops "$TMP/crypto.$r"; done | median)
rec_us=$(for r in $(seq 1 "$ROUNDS"); do val crypto.recover_us "$TMP/crypto.$r"; done | median)
sign_us=$(for r in $(seq 1 "$ROUNDS"); do val crypto.sign_us "$TMP/crypto.$r"; done | median)
bound=$(awk -v o="$rs_ops" -v c="$cores" 'BEGIN{printf "%.0f", o*c}')
echo "anchor  secp256k1 recover ${rec_us} us + sign ${sign_us} us per message -> ${rs_ops}/s per core x ${cores} cores = bound ${bound} msg/s"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NODE=http://127.0.0.1:$port
"$VMNODE" serve --data-dir "$TMP/node" --port "127.0.0.1:$port" --log-level warn >"$TMP/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 200); do curl -sf "$NODE/info" >/dev/null && break; sleep 0.05; done
MID=$("$VMNODE" module create --format vmnode.echo.v1 -o "$TMP/mod" --post --node "$NODE" 2>/dev/null)
"$VMNODE" spawn --module "$MID" --node "$NODE" >"$TMP/one"
for i in $(seq 1 100); do "$VMNODE" spawn --module "$MID" --node "$NODE"; done >"$TMP/hundred"

run_case() { # name pidsfile
  local name=$1 pids=$2
  for r in $(seq 1 "$ROUNDS"); do
    "$BUILD/loadgen" --node "$NODE" --pids "$pids" --count "$COUNT" --concurrency "$CONC" >"$TMP/$name.$r"
    [ "$(val ok "$TMP/$name.$r")" = "$COUNT" ] || { echo "  $name round $r: not all acknowledged"; cat "$TMP/$name.$r"; }
  done
  local rate p50 p99
  rate=$(for r in $(seq 1 "$ROUNDS"); do val msgs_per_s "$TMP/$name.$r"; done | median)
  p50=$(for r in $(seq 1 "$ROUNDS"); do val p50_ms "$TMP/$name.$r"; done | median)
  p99=$(for r in $(seq 1 "$ROUNDS"); do val p99_ms "$TMP/$name.$r"; done | median)
  printf "%-14s %8.0f msg/s  p50 %6.2f ms  p99 %6.2f ms  = %5.1f%% of the crypto bound (%s msg/s)\n" \
    "$name" "$rate" "$p50" "$p99" "$(awk -v a="$rate" -v b="$bound" 'BEGIN{print 100*a/b}')" "$bound"
}
run_case "1 process" "$TMP/one"
run_case "100 processes" "$TMP/hundred"
curl -sf "$NODE/metrics" | grep -E '^vmnode_commit_batches_total|^vmnode_assignments_total' | sed 's/^/metric  /'
[ "$ONLY" = core ] || lua_section
