#!/usr/bin/env bash
# Retry requests and the rate limit of automatic fresh sessions (issue 10,
# docs/protocol.md "Retry requests").
#
# (a) bob's device store is rolled back (a copy taken before a message and
#     a reply is put back): alice's next message cannot be decrypted. bob
#     shows a notice and sends alice a fresh session with a retry request;
#     alice's next receive re-sends the message over that session; bob's
#     next receive shows it exactly once; later messages decrypt normally.
# (b) the undecryptable envelope is delivered again (a hostile or confused
#     server, played by replay.py under a fresh envelope id): bob shows an
#     honest notice but starts no second session within the hour -- alice
#     gets one reset message, not two.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

REPLAY="python3 $(dirname "$0")/replay.py"
BOB_DIR="$E2E_DIR/home/bob/sotto/bob"

# queued_for USER: envelopes waiting on the server for USER's devices.
queued_for() {
    server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id
                WHERE a.username = '$1'"
}
# notices CODE FILE: how many notice events with that code FILE holds.
notices() {
    events notice "$2" | jfield code | grep -c -x -F -- "$1" || true
}

server_start
register alice
register bob

log "alice and bob talk both ways"
sc_ok alice send bob "hello"
receive_json bob "$E2E_DIR/b0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b0.json" "hello")" "1" "bob got hello"
sc_ok bob send alice "hi"
receive_json alice "$E2E_DIR/a0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a0.json" "hi")" "1" "alice got hi"

log "a copy of bob's store is taken; then a message and a reply move both ratchets on"
mkdir -p "$E2E_DIR/bobcopy"
cp -p "$BOB_DIR"/store.db* "$E2E_DIR/bobcopy/" || fail "copy bob's store"
sc_ok alice send bob "before the rollback"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b1.json" "before the rollback")" "1" "bob got it"
sc_ok bob send alice "reply"
receive_json alice "$E2E_DIR/a1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a1.json" "reply")" "1" "alice got the reply"
# alice's delivery receipt for the reply (issue 11) reaches bob now, so that
# the queue below holds only the message under test
receive_json bob "$E2E_DIR/b1r.json"

log "bob's store is rolled back to the copy"
rm -f "$BOB_DIR"/store.db*
cp -p "$E2E_DIR/bobcopy"/store.db* "$BOB_DIR/" || fail "restore bob's store"

log "alice's next message cannot be decrypted by bob: a notice, one reset with a retry request"
sc_ok alice send bob "the lost message"
assert_eq "$($REPLAY "$SERVER_DATA/sottod.db" save "$E2E_DIR/lost.json")" "1" "undecryptable envelope saved"
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b2.json" "the lost message")" "0" "bob could not read it"
assert_eq "$(notices undecryptable "$E2E_DIR/b2.json")" "1" "bob's undecryptable notice"
assert_eq "$(queued_for alice)" "1" "one reset (with retry request) queued for alice"

log "(b) the same ciphertext delivered again: a notice, no second session within the hour"
$REPLAY "$SERVER_DATA/sottod.db" restore "$E2E_DIR/lost.json" --new-id >/dev/null || fail "replay"
receive_json bob "$E2E_DIR/b3.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b3.json" "the lost message")" "0" "replay not readable"
assert_eq "$(notices undecryptable "$E2E_DIR/b3.json")" "0" "no second reset notice"
assert_eq "$(notices undecryptable_reset_pending "$E2E_DIR/b3.json")" "1" "rate-limited notice"
events notice "$E2E_DIR/b3.json" | jfield body | grep -q "already requested at 20" ||
    fail "the notice does not say when the reset was requested: $(cat "$E2E_DIR/b3.json")"
assert_eq "$(queued_for alice)" "1" "still only one reset message for alice"

log "(a) alice receives the reset and the retry request: nothing shown, the message re-sent"
receive_json alice "$E2E_DIR/a2.json"
assert_eq "$(events message "$E2E_DIR/a2.json" | wc -l)" "0" "nothing shown to alice"
assert_eq "$(events notice "$E2E_DIR/a2.json" | wc -l)" "0" "no notice for alice"
assert_eq "$(queued_for bob)" "1" "the re-sent message queued for bob"
receive_json bob "$E2E_DIR/b4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b4.json" "the lost message")" "1" "the lost message shown once"
assert_eq "$(events notice "$E2E_DIR/b4.json" | wc -l)" "0" "no notice with the re-send"

log "it is re-sent once only; later messages decrypt normally both ways"
receive_json alice "$E2E_DIR/a3.json"
assert_eq "$(queued_for bob)" "0" "no second re-send"
sc_ok alice send bob "after the heal"
receive_json bob "$E2E_DIR/b5.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b5.json" "after the heal")" "1" "bob reads alice"
assert_eq "$(events notice "$E2E_DIR/b5.json" | wc -l)" "0" "no notice"
assert_eq "$(count_message_bodies "$E2E_DIR/b5.json" "the lost message")" "0" "not shown twice"
sc_ok bob send alice "back to normal"
receive_json alice "$E2E_DIR/a4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a4.json" "back to normal")" "1" "alice reads bob"
sc_ok bob --json history alice
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "the lost message")" "1" "once in bob's history"

log "alice keeps a copy of each of her 4 messages to bob (for 24 h) and one answered request"
alice_cfg() {
    sqlite3 -batch "$E2E_DIR/home/alice/sotto/alice/store.db" \
        "SELECT count(*) FROM client_config WHERE key LIKE '$1%'"
}
assert_eq "$(alice_cfg retry_sent:)" "4" "alice's kept copies"
assert_eq "$(alice_cfg retry_done:)" "1" "alice's answered requests"

log "ok"
