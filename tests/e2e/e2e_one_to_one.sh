#!/usr/bin/env bash
# 1:1 both ways: alice and bob exchange several messages through a real
# sottod; each side receives exactly what was sent, in order, attributed to
# the right sender; the JSON fields and exit codes are the documented ones.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

log "a name that is taken is refused (exit 4)"
sc mallory --server "$SERVER_URL" --pin "$SERVER_FP" register alice
assert_rc 4 "register a taken name"

log "a wrong pin is refused before anything is sent (exit 3)"
sc eve --server "$SERVER_URL" --pin "$(printf '%064d' 0)" register eve
assert_rc 3 "register with a wrong pin"

log "alice -> bob, three messages"
sc_ok alice --json send bob "hello bob"
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "sent" "send --json type"
assert_eq "$(jfield to <"$E2E_DIR/last.out")" "bob" "send --json to"
ts1=$(jfield timestamp <"$E2E_DIR/last.out")
sc_ok alice send bob "second message"
sc_ok alice send bob "third: üñíçødé ✓"

receive_json bob "$E2E_DIR/bob1.json"
events message "$E2E_DIR/bob1.json" >"$E2E_DIR/bob1.msgs"
assert_eq "$(wc -l <"$E2E_DIR/bob1.msgs")" "3" "bob's message count"
assert_eq "$(jfield body <"$E2E_DIR/bob1.msgs" | sed -n 1p)" "hello bob" "bob's first message"
assert_eq "$(jfield body <"$E2E_DIR/bob1.msgs" | sed -n 2p)" "second message" "bob's second message"
assert_eq "$(jfield body <"$E2E_DIR/bob1.msgs" | sed -n 3p)" "third: üñíçødé ✓" "bob's third message"
assert_eq "$(jfield from <"$E2E_DIR/bob1.msgs" | sort -u)" "alice" "sender of bob's messages"
assert_eq "$(jfield device <"$E2E_DIR/bob1.msgs" | sort -u)" "1" "sender device"
assert_eq "$(jfield timestamp <"$E2E_DIR/bob1.msgs" | sed -n 1p)" "$ts1" "timestamp = the sender's message id"
assert_eq "$(jfield group <"$E2E_DIR/bob1.msgs" | sort -u)" "" "1:1 messages have group null"

log "nothing is delivered twice: a second receive is empty"
receive_json bob "$E2E_DIR/bob2.json"
assert_eq "$(events message "$E2E_DIR/bob2.json" | wc -l)" "0" "messages on second receive"

log "bob -> alice, two messages (the session now runs the other way)"
sc_ok bob send alice "hi alice"
printf 'from stdin\nwith two lines\n' >"$E2E_DIR/stdin.txt"
sc_in bob "$E2E_DIR/stdin.txt" send alice -
assert_rc 0 "send from stdin"
receive_json alice "$E2E_DIR/alice1.json"
events message "$E2E_DIR/alice1.json" >"$E2E_DIR/alice1.msgs"
assert_eq "$(wc -l <"$E2E_DIR/alice1.msgs")" "2" "alice's message count"
assert_eq "$(jfield body <"$E2E_DIR/alice1.msgs" | sed -n 1p)" "hi alice" "alice's first message"
assert_eq "$(count_message_bodies "$E2E_DIR/alice1.json" "$(printf 'from stdin\nwith two lines')")" \
    "1" "multi-line text from stdin (one trailing newline removed)"
assert_eq "$(jfield from <"$E2E_DIR/alice1.msgs" | sort -u)" "bob" "sender of alice's messages"

log "ping-pong: 5 rounds each way"
for i in 1 2 3 4 5; do
    sc_ok alice send bob "ping $i"
    receive_json bob "$E2E_DIR/pp.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/pp.json" "ping $i")" "1" "bob got ping $i"
    sc_ok bob send alice "pong $i"
    receive_json alice "$E2E_DIR/pp.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/pp.json" "pong $i")" "1" "alice got pong $i"
done

log "history keeps both directions"
sc_ok bob --json history alice
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "hello bob")" "1" "bob's history has alice's message"
assert_eq "$(events outgoing "$E2E_DIR/last.out" | jfield body | grep -c -x 'hi alice')" "1" \
    "bob's history has his own message"

log "unknown contact: exit 6; empty text: exit 2; unknown command: exit 2"
sc alice send nosuchuser "hello?"
assert_rc 6 "send to an unknown user"
sc alice send bob ""
assert_rc 2 "send an empty text"
sc alice frobnicate
assert_rc 2 "unknown command"

log "contacts"
sc_ok alice --json contacts
grep '"name":"bob"' "$E2E_DIR/last.out" >"$E2E_DIR/bob.contact" || fail "bob is not in alice's contacts"
assert_eq "$(jfield identity_changed <"$E2E_DIR/bob.contact")" "false" "identity_changed"
assert_eq "$(jfield devices <"$E2E_DIR/bob.contact")" "1" "bob's device count"

log "ok"
