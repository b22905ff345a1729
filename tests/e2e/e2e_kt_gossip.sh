#!/usr/bin/env bash
# Key-transparency gossip catches a server that shows one user a forked key
# directory, with no auditor configured (issue 9; docs/protocol.md
# "Gossip").
#
# The test server (sottod-test, SOTTOD_TEST_KT_FORK=alice:bob) forges an
# identity for bob (an account key and device keys the operator made, a device
# list for "bob" signed by that key) and shows it to alice, with a fork of its
# log: the published log plus one leaf where bob's entry holds the forged
# keys, signed with the server's key. Everyone else sees the real log. alice's own key-directory checks pass (her view is consistent
# with itself) and she holds the forked head. Then alice writes to carol,
# frank and gina: her messages carry her (forked) tree head.
#  - carol holds the real head of the SAME size: two server-signed heads with
#    different roots: alert kt_equivocation, evidence kept.
#  - frank holds a real head of a LARGER size: the server cannot prove that
#    alice's head is a prefix of the real log: alert kt_inconsistent.
#  - gina holds a SMALLER real head (she reads alice's message before the
#    real log grows): the server refuses to prove a size it never had:
#    kt_inconsistent ("it refused").
#  - hank has alice's head waiting in kt_gossip_pending (as after a lost
#    connection): his next login checks it and raises the alert.
# The messages themselves are shown. A control run on a server without the
# fork (same steps) raises no alert, and the receiver's debug line shows that
# the gossiped head was checked (consistent), not skipped.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${SOTTOD_TEST:?set SOTTOD_TEST to the sottod-test binary (built with test hooks)}"
SOTTOD=$SOTTOD_TEST

store_of() { echo "$E2E_DIR/home/$1/sotto/$1/store.db"; }
evidence_rows() { # evidence_rows USER [KIND]
    sqlite3 -batch "$(store_of "$1")" \
        "SELECT count(*) FROM kt_evidence${2:+ WHERE kind = '$2'}"
}
log_size() { server_sql "SELECT count(*) FROM kt_log"; }
# wait_log_size N: the server's log holds N entries and a head for N is signed
# (the KT batch after a registration is asynchronous)
wait_log_size() {
    for _ in $(seq 1 100); do
        if [ "$(log_size)" = "$1" ] &&
            [ "$(server_sql "SELECT count(*) FROM kt_heads WHERE size = $1")" != "0" ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "the server's log did not reach $1 entries (it holds $(log_size))"
}
# kt_status_evidence USER: the evidence count `sotto kt status --json` reports
kt_status_evidence() {
    sc_ok "$1" --json kt status
    jfield evidence <"$E2E_DIR/last.out"
}
# notices CODE FILE: the notice events with code CODE in FILE
notices() {
    events notice "$2" | python3 -c '
import json, sys
for line in sys.stdin:
    ev = json.loads(line)
    if ev.get("code") == sys.argv[1]:
        print(json.dumps(ev, sort_keys=True))
' "$1"
}

# ---------------------------------------------------------------- the fork
SOTTOD_TEST_KT_FORK=alice:bob server_start
for u in alice bob carol frank gina hank; do
    register "$u"
done
wait_log_size 6
real=$(log_size)

log "alice writes to bob: the server shows her its fork, and her key-directory checks pass"
# Without an auditor nothing stops the attack at first: alice pins the forged
# key and her message goes to the operator's keys.
sc_ok alice send bob "for bob only"
alice_held=$(sqlite3 -batch "$(store_of alice)" "SELECT hex(substr(head, 1, 8)) FROM kt_head")
assert_eq "$((16#$alice_held))" "$((real + 1))" "size of the (forked) head alice holds"
assert_eq "$(evidence_rows alice)" "0" "alice's evidence (her view is consistent with itself)"

log "alice writes to carol and frank: her head rides along"
sc_ok alice send carol "hello carol"
sc_ok alice send frank "hello frank"
sc_ok alice send gina "hello gina"

log "gina reads it at once: her real head is smaller, the server refuses to link them"
receive_json gina "$E2E_DIR/gina.json"
assert_eq "$(count_message_bodies "$E2E_DIR/gina.json" "hello gina")" "1" "gina got alice's message"
notices kt_inconsistent "$E2E_DIR/gina.json" >"$E2E_DIR/gina.alerts"
assert_eq "$(wc -l <"$E2E_DIR/gina.alerts" | tr -d ' ')" "1" "kt_inconsistent notices at gina"
body=$(jfield body <"$E2E_DIR/gina.alerts")
case "$body" in
*"signed for alice ($((real + 1)) entries"*"for you ($real entries"*"it refused: "*) ;;
*) fail "gina's alert does not say the server refused: $body" ;;
esac
assert_eq "$(evidence_rows gina inconsistent)" "1" "gina's inconsistency evidence"

log "the real log grows to the fork's size (dave): carol holds a real head of that size"
register dave
wait_log_size $((real + 1))
receive_json carol "$E2E_DIR/carol.json"
assert_eq "$(count_message_bodies "$E2E_DIR/carol.json" "hello carol")" "1" \
    "carol got alice's message (gossip never blocks it)"
notices kt_equivocation "$E2E_DIR/carol.json" >"$E2E_DIR/carol.alerts"
assert_eq "$(wc -l <"$E2E_DIR/carol.alerts" | tr -d ' ')" "1" "kt_equivocation notices at carol"
body=$(jfield body <"$E2E_DIR/carol.alerts")
case "$body" in
*"the server showed alice a different key directory than you"*"$((real + 1)) entries"*) ;;
*) fail "carol's alert does not say what happened: $body" ;;
esac
assert_eq "$(jfield from <"$E2E_DIR/carol.alerts")" "alice" "the alert is in carol's conversation with alice"
assert_eq "$(evidence_rows carol equivocation)" "1" "carol's equivocation evidence"
assert_eq "$(kt_status_evidence carol)" "1" "evidence count in carol's kt status"
# both heads kept: carol's (real) and alice's (forked), same size, other roots
assert_eq "$(sqlite3 -batch "$(store_of carol)" \
    "SELECT substr(head_a, 1, 8) = substr(head_b, 1, 8) AND substr(head_a, 9, 32) <> substr(head_b, 9, 32) FROM kt_evidence")" \
    "1" "the evidence holds two heads of one size with different roots"

log "the real log grows past it (erin): frank's head is larger, the server cannot link them"
register erin
wait_log_size $((real + 2))
receive_json frank "$E2E_DIR/frank.json"
assert_eq "$(count_message_bodies "$E2E_DIR/frank.json" "hello frank")" "1" "frank got alice's message"
notices kt_inconsistent "$E2E_DIR/frank.json" >"$E2E_DIR/frank.alerts"
assert_eq "$(wc -l <"$E2E_DIR/frank.alerts" | tr -d ' ')" "1" "kt_inconsistent notices at frank"
body=$(jfield body <"$E2E_DIR/frank.alerts")
case "$body" in
*"the key directory it signed for alice ($((real + 1)) entries"*"($((real + 2)) entries"*) ;;
*) fail "frank's alert does not name both heads: $body" ;;
esac
assert_eq "$(evidence_rows frank inconsistent)" "1" "frank's inconsistency evidence"
assert_eq "$(kt_status_evidence frank)" "1" "evidence count in frank's kt status"

log "hank: alice's head waits in his pending queue; his next login checks it"
sqlite3 -batch "$(store_of hank)" "ATTACH '$(store_of alice)' AS a;
    INSERT INTO kt_gossip_pending(contact, head, received_ms) SELECT 'alice', head, 1 FROM a.kt_head"
assert_eq "$(sqlite3 -batch "$(store_of hank)" "SELECT count(*) FROM kt_gossip_pending")" "1" \
    "hank's pending heads before his login"
receive_json hank "$E2E_DIR/hank.json"
assert_eq "$(notices kt_inconsistent "$E2E_DIR/hank.json" | wc -l | tr -d ' ')" "1" \
    "kt_inconsistent notices at hank"
assert_eq "$(sqlite3 -batch "$(store_of hank)" "SELECT count(*) FROM kt_gossip_pending")" "0" \
    "hank's pending heads after his login"
assert_eq "$(evidence_rows hank inconsistent)" "1" "hank's inconsistency evidence"

log "nothing more on a second receive: the alert is not repeated"
receive_json carol "$E2E_DIR/carol2.json"
assert_eq "$(notices kt_equivocation "$E2E_DIR/carol2.json" | wc -l | tr -d ' ')" "0" \
    "kt_equivocation notices on carol's second receive"
assert_eq "$(evidence_rows carol)" "1" "carol's evidence after a second receive"
server_stop

# ---------------------------------------------------------------- control
log "control: the same steps on a server without the fork raise no alert"
SERVER_DATA="$E2E_DIR/server-control"
server_start
for u in ann ben cat fay; do
    register "$u"
done
wait_log_size 4
sc_ok ann send ben "for ben"
sc_ok ann send cat "hello cat"
sc_ok ann send fay "hello fay"
register dan
wait_log_size 5
export SOTTO_DEBUG_GOSSIP=1
receive_json cat "$E2E_DIR/cat.json"
grep -q -F "ann's head (4 entries) is consistent with ours (5 entries)" "$E2E_DIR/last.err" ||
    fail "cat did not check ann's head: $(cat "$E2E_DIR/last.err")"
register eva
wait_log_size 6
receive_json fay "$E2E_DIR/fay.json"
grep -q -F "ann's head (4 entries) is consistent with ours (6 entries)" "$E2E_DIR/last.err" ||
    fail "fay did not check ann's head: $(cat "$E2E_DIR/last.err")"
unset SOTTO_DEBUG_GOSSIP
for u in cat fay; do
    assert_eq "$(count_message_bodies "$E2E_DIR/$u.json" "hello $u")" "1" "$u got ann's message"
    assert_eq "$(events notice "$E2E_DIR/$u.json" | grep -c '"kt_' || true)" "0" "kt notices at $u"
    assert_eq "$(evidence_rows "$u")" "0" "$u's evidence"
    assert_eq "$(kt_status_evidence "$u")" "0" "evidence count in $u's kt status"
done
server_stop_ok
log "ok"
