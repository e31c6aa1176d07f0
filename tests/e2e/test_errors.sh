#!/usr/bin/env bash
# Bad input gets a clear error and loses nothing: malformed and oversized
# items, bad signatures, unknown modules/formats/processes, wrong schedulers,
# bad configuration; and the hymx-compatible parts of start-up (node key,
# modules loaded from mod/).
. "$(dirname "$0")/lib.sh"
SHARED=${VN_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
D=$E2E_TMP/node; P=$(free_port)
HYMX_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hymx_test_key"]["private_key_hex"])' "$SHARED/vectors/ans104/keys.json")

# Real hymx module items dropped into <dataDir>/mod are loaded at start.
mkdir -p "$D/mod"; cp "$SHARED"/vectors/hymx/mod-*.json "$D/mod/"
start_node "$D" "$P" --prv-key "$HYMX_KEY" --max-item-size 5KiB || exit 1
addr=$(curl -sf "$NODE/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Node"]["Acc-Id"])')
check "node id from prvKey is the hymx test address" test "$addr" = 0x972AeD684D6f817e1b58AF70933dF1b4a75bfA51
nmods=$(curl -sf "$NODE/modules" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["modules"]))')
check "15 hymx module vectors loaded from mod/ ($nmods)" test "$nmods" -ge 15

post() { curl -s -o "$E2E_TMP/body" -w '%{http_code}' -X POST --data-binary @"$1" -H 'Content-Type: application/octet-stream' "$NODE/"; }
code_is() { # status code-substring
  [ "$1" = "$2" ] && grep -q "\"error\":\"$3\"" "$E2E_TMP/body"
}

# A process of a real VMDocker module: refused with a clear reason (no container VM yet).
"$VMNODE" item sign --prvkey "$HYMX_KEY" --tag Data-Protocol=hymx --tag Variant=v0.1.0 --tag Type=Process \
  --tag Module=4sX9Uo5-Qk37yUOMLCMrwnm4S3Wfu3Fp7QCSRN0oeoU --tag "Scheduler=$addr" -o "$E2E_TMP/p1.bin" >/dev/null
st=$(post "$E2E_TMP/p1.bin")
check "spawn of an unsupported module format: 400 module_format_unsupported" code_is "$st" 400 module_format_unsupported
check "  and the message names the format" grep -q "web.vmdocker-golua-ao.v0.0.1" "$E2E_TMP/body"

"$VMNODE" item sign --prvkey "$HYMX_KEY" --tag Data-Protocol=hymx --tag Type=Process \
  --tag Module=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --tag "Scheduler=$addr" -o "$E2E_TMP/p2.bin" >/dev/null
check "spawn of an unknown module: 400 module_not_found" code_is "$(post "$E2E_TMP/p2.bin")" 400 module_not_found

"$VMNODE" item sign --prvkey "$HYMX_KEY" --tag Data-Protocol=hymx --tag Type=Process \
  --tag Module=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --tag Scheduler=0x0000000000000000000000000000000000000001 -o "$E2E_TMP/p3.bin" >/dev/null
check "spawn for an unknown scheduler: 400 scheduler_unknown" code_is "$(post "$E2E_TMP/p3.bin")" 400 scheduler_unknown

"$VMNODE" item sign --prvkey "$HYMX_KEY" --target AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --tag Data-Protocol=ao \
  --tag Type=Message --tag Action=Ping -o "$E2E_TMP/m1.bin" >/dev/null
check "message to an unknown process: process_not_found" grep -q process_not_found <(post "$E2E_TMP/m1.bin"; cat "$E2E_TMP/body")

"$VMNODE" item sign --prvkey "$HYMX_KEY" --tag Data-Protocol=ao --tag Action=Ping -o "$E2E_TMP/m2.bin" >/dev/null
check "item without Type: 400 type_missing" code_is "$(post "$E2E_TMP/m2.bin")" 400 type_missing

head -c 6000 /dev/urandom >"$E2E_TMP/big.bin"
check "body over maxItemSize: 413 body_too_large" code_is "$(post "$E2E_TMP/big.bin")" 413 body_too_large
printf '\x03\x00garbage' >"$E2E_TMP/junk.bin"
check "garbage: 400 item_truncated" code_is "$(post "$E2E_TMP/junk.bin")" 400 item_truncated
for f in 18_invalid_eth_sig_bitflip 19_invalid_rsa_sig_bitflip 26_invalid_target_flag_2 28_invalid_tag_count_mismatch 32_edge_eth_high_s 33_edge_eth_wrong_v; do
  st=$(post "$SHARED/vectors/ans104/$f.bin")
  check "shared vector $f refused with 400 ($(cat "$E2E_TMP/body" | head -c 60))" test "$st" = 400
done
check "refused items took no nonce and left no item behind" test "$(curl -s -o /dev/null -w '%{http_code}' "$NODE/message/JF8JxSsKCtEdbH4jtexyU2Spri2f3qQ6vNjWfpWEb9E")" = 404
check "node still answers after all that" curl -sf "$NODE/info" -o /dev/null

# The key persists across restarts when it is generated.
stop_node
D2=$E2E_TMP/node2
start_node "$D2" "$P" || exit 1
a1=$(curl -sf "$NODE/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Node"]["Acc-Id"])')
stop_node; start_node "$D2" "$P" || exit 1
a2=$(curl -sf "$NODE/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Node"]["Acc-Id"])')
check "generated node key persists across restarts ($a1)" test -n "$a1" -a "$a1" = "$a2"
check "node.key is private (0600)" test "$(stat -c %a "$D2/node.key")" = 600
stop_node

# Configuration mistakes are errors naming the field.
out=$("$VMNODE" serve --data-dir "$E2E_TMP/x" --bogus-flag 1 2>&1); rc=$?
check "unknown serve flag refused ($out)" test $rc -ne 0 -a -n "$(grep bogus-flag <<<"$out")"
out=$(VMNODE_DATADIR=/tmp "$VMNODE" config 2>&1); rc=$?
check "unknown VMNODE_ variable refused" test $rc -ne 0 -a -n "$(grep VMNODE_DATADIR <<<"$out")"
printf 'port: ":8080"\nnodeUrl: http://x\n' >"$E2E_TMP/bad.yaml"
out=$("$VMNODE" config --config "$E2E_TMP/bad.yaml" 2>&1); rc=$?
check "unknown config.yaml field refused with its line ($out)" test $rc -ne 0 -a -n "$(grep 'line 2' <<<"$out")"
out=$("$VMNODE" config --port 99999 2>&1); rc=$?
check "bad port refused" test $rc -ne 0
out=$("$VMNODE" config --prv-key 0x1234 2>&1); rc=$?
check "malformed prvKey refused without echoing it" test $rc -ne 0 -a -z "$(grep 0x1234 <<<"$out")"
out=$("$VMNODE" send 2>&1); rc=$?
check "send without a process id: usage, exit 2" test $rc -eq 2
out=$("$VMNODE" result AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --node http://127.0.0.1:1 2>&1); rc=$?
check "unreachable node: clear error ($out)" test $rc -ne 0 -a -n "$(grep node_unreachable <<<"$out")"
out=$("$VMNODE" verify-log -AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --node http://127.0.0.1:1 2>&1)
check "an id starting with '-' is an argument, not an option ($out)" grep -q node_unreachable <<<"$out"
out=$("$VMNODE" send --Gi8AGngwam5dvzbeokgyvzAuaHxWkwcf5iG84rCh8 --action X --node http://127.0.0.1:1 2>&1)
check "an id starting with '--' is an argument too ($out)" grep -q node_unreachable <<<"$out"
out=$("$VMNODE" item verify "$SHARED"/vectors/ans104/0[12]_*.bin "$SHARED/vectors/ans104/18_invalid_eth_sig_bitflip.bin"); rc=$?
check "item verify: exit 1 when one of several is invalid" test $rc -eq 1 -a "$(grep -c '^OK' <<<"$out")" = 2
e2e_finish
