#!/usr/bin/env bash
# A recipient's shared sealed quota, filled by someone else, must not block
# an honest sender (issue 12; docs/protocol.md "Sealed sender", client
# rules). Sealed envelopes carry no sender, so the server can cap them only
# per recipient over all senders (queue_sealed_max, rate_sealed_*); the
# identified caps are per sender. When a sealed send is answered QUEUE_FULL
# or RATE_LIMITED the client sends that message identified at once.
#  1. queue_sealed_max=2: dave (bob's contact) fills bob's sealed quota
#     while bob is offline; alice's next message to bob goes identified at
#     once, is queued under her name, and bob reads it from alice.
#  2. rate_sealed_burst=2: dave spends bob's sealed burst (his own last
#     message then goes identified); alice's message goes identified at
#     once and arrives.
# Before the fix alice's send failed (QUEUE_FULL: retried sealed a minute
# later, into the same full quota) and nothing was queued for bob.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start --set queue_sealed_max=2 --set metrics_listen=off
register_all alice bob dave

queued() { server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = 'bob' AND e.device_id = 1 AND e.source_id $1"; }
msg_from() {
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line:
        ev = json.loads(line)
        if ev.get("type") == "message" and ev.get("body") == sys.argv[2]:
            print(ev.get("from"))
' "$1" "$2"
}

log "alice and dave become bob's contacts (bob answers: they hold his profile key)"
sc_ok alice send bob "hi from alice"
sc_ok dave send bob "hi from dave"
sc_ok bob receive
sc_ok bob send alice "hi alice"
sc_ok bob send dave "hi dave"
sc_ok alice receive
sc_ok dave receive
sc_ok bob receive # delivery receipts
alice_id=$(server_sql "SELECT id FROM accounts WHERE username = 'alice'")

log "1. dave fills bob's sealed quota (queue_sealed_max=2) while bob is offline"
sc_ok dave send bob "filler one"
sc_ok dave send bob "filler two"
assert_eq "$(queued "= 0")" "2" "sealed envelopes queued for bob"
SOTTO_DEBUG_SEALED=1 sc alice send bob "alice despite a full sealed quota"
cat "$E2E_DIR/last.err"
assert_rc 0 "alice's send with bob's sealed quota full"
assert_eq "$(queued "= $alice_id")" "1" "alice's message queued for bob at once (identified)"
grep -q "identified" "$E2E_DIR/last.err" || fail "alice did not say why she sent identified"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(msg_from "$E2E_DIR/b1.json" "alice despite a full sealed quota")" "alice" \
    "bob reads alice's message"
assert_eq "$(msg_from "$E2E_DIR/b1.json" "filler two")" "dave" "bob reads dave's sealed message"
sc_ok alice receive
sc_ok dave receive
log "the quota is free again: alice seals again"
sc_ok alice send bob "sealed again"
assert_eq "$(queued "= 0")" "1" "alice's next message is sealed"
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(msg_from "$E2E_DIR/b2.json" "sealed again")" "alice" "sealed again: from alice"
sc_ok alice receive

log "2. dave spends bob's sealed rate (rate_sealed_burst=2, 1 per minute)"
server_restart --set rate_sealed_burst=2 --set rate_sealed_per_min=1 --set metrics_listen=off
# (each sending process also spends a token on its sealed connection's
# first, empty send: dave sends until his own messages go identified)
for i in 1 2 3 4 5; do
    before=$(queued "= 0")
    sc_ok dave send bob "burst $i"
    [ "$(queued "= 0")" -gt "$before" ] || break
done
assert_eq "$(queued "<> 0")" "1" "dave's last message went identified (bob's sealed rate spent)"
[ "$(queued "= 0")" -ge 1 ] || fail "no sealed envelope from dave before the rate was spent"
SOTTO_DEBUG_SEALED=1 sc alice send bob "alice despite the sealed rate"
cat "$E2E_DIR/last.err"
assert_rc 0 "alice's send with bob's sealed rate spent"
assert_eq "$(queued "= $alice_id")" "1" "alice's message queued for bob at once (identified)"
receive_json bob "$E2E_DIR/b3.json"
assert_eq "$(msg_from "$E2E_DIR/b3.json" "alice despite the sealed rate")" "alice" \
    "bob reads alice's message"

log "sealed quota: OK"
