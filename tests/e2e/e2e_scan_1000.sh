#!/usr/bin/env bash
# After 1,000 messages (alice and carol, 500 each, to bob, in parallel, plus
# one attachment) no plaintext is found anywhere in the server's data
# directory (database, WAL, SHM, attachment blobs, certificates) nor in its
# log output -- checked while the envelopes sit in the queue, after bob
# received them, and after the server stopped. bob receives each of the
# 1,000 messages exactly once. `sottod admin disclose` shows no plaintext.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

N=${E2E_SCAN_N:-500}   # per sender
CANARY="canary$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# durability=process: no fsync per commit (what is written is the same; the
# test is about what lands on disk, not about surviving power loss).
# queue_per_sender_max=0: alice and carol are strangers to bob (identified
# sends), and 500 each would pass the per-sender cap (test_abuse covers it).
server_start --set rate_send_per_min=1000000 --set rate_send_burst=1000000 --set durability=process \
    --set rate_pair_per_min=1000000 --set rate_pair_burst=1000000 --set queue_per_sender_max=0
for u in alice bob carol; do
    register "$u"
done

# send_many USER: USER sends N messages to bob, one process each.
send_many() {
    local who=$1 i rc
    for i in $(seq 1 "$N"); do
        rc=0
        XDG_DATA_HOME="$E2E_DIR/home/$who" timeout -k 2 "$E2E_TIMEOUT" "$SOTTO" --account "$who" \
            send bob "$CANARY $who message $(printf '%04d' "$i"): the quick brown fox jumps over the lazy dog" \
            >/dev/null 2>>"$E2E_DIR/send-$who.err" </dev/null || rc=$?
        if [ "$rc" -ne 0 ]; then
            echo "send $i by $who: exit $rc" >>"$E2E_DIR/send-$who.err"
            return 1
        fi
    done
}

log "alice and carol send $N messages each to bob (in parallel)"
start=$(date +%s)
send_many alice &
pa=$!
send_many carol &
pc=$!
E2E_BG_PIDS+=("$pa" "$pc")
wait "$pa" || fail "alice's sends failed: $(tail -n 5 "$E2E_DIR/send-alice.err")"
wait "$pc" || fail "carol's sends failed: $(tail -n 5 "$E2E_DIR/send-carol.err")"
log "sent $((2 * N)) messages in $(($(date +%s) - start)) s"

head -c 20000 /dev/urandom | base64 -w 76 | sed "s/^/$CANARY file line /" >"$E2E_DIR/notes.txt"
sc_ok alice send --file "$E2E_DIR/notes.txt" --text "$CANARY with a file" bob

assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "$((2 * N + 1))" "envelopes queued for bob"

needles=("$CANARY" "quick brown fox" "lazy dog" "with a file" "file line")

log "scan while the envelopes wait in the queue (database + WAL + SHM + blobs)"
find "$SERVER_DATA" -type f -printf "%P\n" | sort | sed 's/^/   /'
assert_eq "$(scan_server "${needles[@]}")" "0" "plaintext hits in the server's data directory (queued)"

log "bob receives everything"
E2E_TIMEOUT=120 receive_json bob "$E2E_DIR/all.json"
python3 - "$E2E_DIR/all.json" "$CANARY" "$N" <<'EOF' || fail "bob's received messages are not exactly the ones sent"
import json, sys
path, canary, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
got = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
msgs = [m for m in got if m.get("type") == "message"]
want = []
for who in ("alice", "carol"):
    want += ["%s %s message %04d: the quick brown fox jumps over the lazy dog" % (canary, who, i)
             for i in range(1, n + 1)]
want.append("%s with a file" % canary)
bodies = [m["body"] for m in msgs]
missing = set(want) - set(bodies)
extra = [b for b in bodies if b not in set(want)]
dups = len(bodies) - len(set(bodies))
if missing or extra or dups or len(bodies) != len(want):
    sys.exit("received %d, expected %d; missing %d, unexpected %d, duplicates %d"
             % (len(bodies), len(want), len(missing), len(extra), dups))
for who in ("alice", "carol"):
    seq = [b for b, m in zip(bodies, msgs) if m["from"] == who and "message" in b]
    if seq != sorted(seq):
        sys.exit("%s's messages arrived out of order" % who)
att = [m for m in msgs if m["attachments"]]
assert len(att) == 1 and att[0]["attachments"][0]["path"], "the file did not arrive"
EOF
path=$(events message "$E2E_DIR/all.json" | python3 -c '
import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m["attachments"]:
        print(m["attachments"][0]["path"])')
cmp -s "$path" "$E2E_DIR/notes.txt" || fail "the received file differs from the one sent"
assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "0" "envelopes left after bob received"

log "positive control: the same search finds the plaintexts where they live (bob's device)"
hits=$(SERVER_DATA="$E2E_DIR/home/bob" scan_server "$CANARY" 2>/dev/null)
[ "$hits" -gt 0 ] || fail "the scan finds nothing even in bob's store: the scan itself is broken"

log "scan after delivery"
assert_eq "$(scan_server "${needles[@]}")" "0" "plaintext hits in the server's data directory (delivered)"

log "no private key of any client on the server"
read -r nkeys priv pub < <(scan_server_keys "$E2E_DIR"/home/*/sotto/*/store.db)
[ "$nkeys" -ge 300 ] || fail "only $nkeys private keys found in the client stores (expected >= 3 x 100 prekeys)"
assert_eq "$priv" "0" "private key bytes found in the server's data directory"
[ "$pub" -gt 0 ] || fail "the key scan does not even find the identity public keys: it is broken"

log "sottod admin disclose bob: JSON, no plaintext"
"$SOTTOD" admin --data-dir "$SERVER_DATA" disclose bob >"$E2E_DIR/disclose.json" 2>"$E2E_DIR/disclose.err" ||
    fail "admin disclose failed: $(cat "$E2E_DIR/disclose.err")"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$E2E_DIR/disclose.json" ||
    fail "disclose output is not JSON: $(head -c 500 "$E2E_DIR/disclose.json")"
for s in "${needles[@]}"; do
    grep -q -F -- "$s" "$E2E_DIR/disclose.json" && fail "disclose shows plaintext [$s]"
done

log "scan after the server stopped (WAL checkpointed into the database), and its logs"
server_stop_ok
assert_eq "$(scan_server "${needles[@]}")" "0" "plaintext hits in the server's data directory (stopped)"
for s in "${needles[@]}"; do
    grep -q -a -F -- "$s" "$E2E_DIR/server.out" "$E2E_DIR/server.err" && fail "the server logged plaintext [$s]"
done

log "ok"
