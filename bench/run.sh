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
# usage: bench/run.sh [BUILD]   env: ROUNDS (3), COUNT (20000), CONC (32)
set -u
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}; COUNT=${COUNT:-20000}; CONC=${CONC:-32}
VMNODE=$BUILD/vmnode
TMP=$(mktemp -d /tmp/vmnode-bench.XXXXXX)
export XDG_CONFIG_HOME=$TMP/xdg
trap 'kill $NODE_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
val() { awk -v k="$1" '$1==k {print $2}' "$2"; }

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
