#!/usr/bin/env bash
# A redelivered envelope shows nothing twice. The server (played here by
# replay.py writing into its database) puts envelopes that bob already
# received and acked back into his queue: once with the same envelope id
# (de-duplication by id), once under a fresh id (the ratchet's replay
# protection). Both for the first message of a session (PreKeySignalMessage)
# and for a later one (SignalMessage). Nothing may show, and the session
# must keep working.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

REPLAY="python3 $(dirname "$0")/replay.py"
server_start
register bob
register carol

# check_replays WHAT TEXT: the envelopes saved in $E2E_DIR/saved.json were
# received once already; put them back (same id, then new id) and check that
# bob's receive shows nothing.
BOB_QUEUE="SELECT count(*) FROM envelopes WHERE account_id = (SELECT id FROM accounts WHERE username = 'bob')"
check_replays() {
    local what=$1 text=$2 mode
    for mode in same-id new-id; do
        if [ "$mode" = same-id ]; then
            $REPLAY "$SERVER_DATA/sottod.db" restore "$E2E_DIR/saved.json" >/dev/null || fail "restore"
        else
            $REPLAY "$SERVER_DATA/sottod.db" restore "$E2E_DIR/saved.json" --new-id >/dev/null || fail "restore"
        fi
        # bob's queue only: his delivery receipts (issue 11) wait in carol's
        assert_eq "$(server_sql "$BOB_QUEUE")" "1" "[$what, $mode] envelopes put back"
        receive_json bob "$E2E_DIR/replay.json"
        assert_eq "$(count_message_bodies "$E2E_DIR/replay.json" "$text")" "0" "[$what, $mode] replayed message shown again"
        if [ -s "$E2E_DIR/replay.json" ]; then
            fail "[$what, $mode] a replay produced visible events: $(cat "$E2E_DIR/replay.json")"
        fi
        assert_eq "$(server_sql "$BOB_QUEUE")" "0" "[$what, $mode] replay acked"
    done
}

log "carol's first message to bob (a PreKeySignalMessage) arrives once"
sc_ok carol send bob "first message"
assert_eq "$($REPLAY "$SERVER_DATA/sottod.db" save "$E2E_DIR/saved.json")" "1" "envelopes saved"
receive_json bob "$E2E_DIR/r1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/r1.json" "first message")" "1" "first delivery"
log "it is redelivered (same id, then a new id): nothing shows"
check_replays prekey "first message"

log "bob answers; carol's next message (a SignalMessage) arrives once"
sc_ok bob send carol "answer"
receive_json carol "$E2E_DIR/c1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/c1.json" "answer")" "1" "carol got the answer"
# carol's delivery receipt for the answer (issue 11) reaches bob first, so
# that the queue below holds only the message under test
receive_json bob "$E2E_DIR/r1r.json"
sc_ok carol send bob "second message"
assert_eq "$($REPLAY "$SERVER_DATA/sottod.db" save "$E2E_DIR/saved.json")" "1" "envelopes saved"
receive_json bob "$E2E_DIR/r2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/r2.json" "second message")" "1" "second delivery"
log "it is redelivered (same id, then a new id): nothing shows"
check_replays signal "second message"

log "the session still works both ways, and history holds each message once"
sc_ok carol send bob "still works"
receive_json bob "$E2E_DIR/r3.json"
events message "$E2E_DIR/r3.json" >"$E2E_DIR/r3.msgs"
assert_eq "$(jfield body <"$E2E_DIR/r3.msgs")" "still works" "bob's only message"
sc_ok bob send carol "yes it does"
receive_json carol "$E2E_DIR/c2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/c2.json" "yes it does")" "1" "carol got it"
sc_ok bob --json history carol
for t in "first message" "second message" "still works"; do
    assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "$t")" "1" "[$t] in bob's history"
done

log "ok"
