#!/usr/bin/env bash
# What the client does when the server fails or misbehaves (issue 7's
# losses):
#  1. A server storage failure on send is not a refusal: the client says
#     "queued, will retry" (exit 3), keeps the message, and the next command
#     that connects delivers it exactly once.
#  2. A real refusal (a ciphertext over the server's cap) exits 4 and
#     nothing stays queued: a resend is not a duplicate.
#  3. One envelope the operator damaged in the server's database (while it
#     was stopped) does not jam the queue: the receiver reports it, acks it,
#     and the messages behind it arrive.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${SOTTOD_TEST:?set SOTTOD_TEST to the sottod-test binary (built with test hooks)}"

outbox() { # outbox USER DEST: rows in USER's outgoing queue for DEST
    sqlite3 -batch "$E2E_DIR/home/$1/sotto/$1/store.db" \
        "SELECT count(*) FROM client_outgoing WHERE destination = '$2'"
}

# The hook binary for parts 1 and 2; the real sottod for part 3.
SOTTOD_REAL=$SOTTOD
SOTTOD=$SOTTOD_TEST
server_start
register alice
register bob

log "1. the server's storage fails on one send: exit 3, queued, delivered once later"
# restarted with the hook armed: the next send fails as a storage failure would
SOTTOD_TEST_FAIL_SEND=1 server_restart
sc alice send bob "first try hits a storage failure"
assert_rc 3 "send while the server's storage fails"
grep -q -i "queued" "$E2E_DIR/last.err" ||
    fail "send did not say the message stays queued: $(cat "$E2E_DIR/last.err")"
assert_eq "$(outbox alice bob)" "1" "rows queued at alice after the failed send"
sc_ok alice --json flush
assert_eq "$(jfield queued <"$E2E_DIR/last.out")" "0" "messages left queued after flush"
receive_json bob "$E2E_DIR/r1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/r1.json" "first try hits a storage failure")" "1" \
    "the retried message reached bob once"

log "2. a real refusal: exit 4 and nothing queued"
server_restart --set ciphertext_max=1024
long=$(head -c 3000 /dev/zero | tr '\0' 'x')
sc alice send bob "$long"
assert_rc 4 "send of a ciphertext over the server's cap"
assert_eq "$(outbox alice bob)" "0" "rows queued at alice after a refusal"
sc_ok alice send bob "short one after the refusal"
receive_json bob "$E2E_DIR/r2.json"
assert_eq "$(events message "$E2E_DIR/r2.json" | wc -l | tr -d ' ')" "1" "messages bob got"
assert_eq "$(count_message_bodies "$E2E_DIR/r2.json" "short one after the refusal")" "1" \
    "the short message arrived"

log "3. the operator damages a stored envelope while the server is stopped"
SOTTOD=$SOTTOD_REAL
server_restart
sc_ok alice send bob "this one gets damaged"
sc_ok alice send bob "this one stays intact"
server_stop_ok
assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "2" "envelopes queued for bob"
server_sql "UPDATE envelopes SET body = X'0aff0bde' WHERE seq = (SELECT min(seq) FROM envelopes)"
server_restart
sc bob --json receive
assert_rc 0 "receive with a damaged envelope in the queue"
cp "$E2E_DIR/last.out" "$E2E_DIR/r3.json"
events notice "$E2E_DIR/r3.json" | grep '"damaged_envelope"' >/dev/null ||
    fail "no damaged_envelope notice: $(cat "$E2E_DIR/r3.json")"
assert_eq "$(count_message_bodies "$E2E_DIR/r3.json" "this one stays intact")" "1" \
    "the message behind the damaged one arrived"
for _ in $(seq 1 30); do
    [ "$(server_sql "SELECT count(*) FROM envelopes")" = 0 ] && break
    sleep 0.1
done
assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "0" "envelopes left (both acked)"
sc_ok bob --json receive
assert_eq "$(events notice "$E2E_DIR/last.out" | wc -l | tr -d ' ')" "0" \
    "the damaged envelope is not reported twice"
log "ok"
