#!/usr/bin/env bash
# A contact's identity changes: the operator deletes bob's account and
# someone registers "bob" again with new keys (exactly what a compelled or
# malicious operator would do to listen in). alice's client must refuse to
# send (exit 5) until she runs `trust bob`; a message from the new identity
# is held, not shown, until trust.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
for u in alice bob carol dave; do
    register "$u"
done

# delete_account NAME: the operator removes the account with
# `sottod admin delete-account` next to the running server (NAME's devices
# are not connected at that moment).
delete_account() {
    "$SOTTOD" admin --data-dir "$SERVER_DATA" delete-account "$1" >"$E2E_DIR/admin.out" 2>&1 ||
        fail "sottod admin delete-account $1: $(cat "$E2E_DIR/admin.out")"
    assert_eq "$(server_sql "SELECT count(*) FROM accounts WHERE username = '$1'")" "0" "account $1 deleted"
    if "$SOTTOD" admin --data-dir "$SERVER_DATA" disclose "$1" >/dev/null 2>&1; then
        fail "disclose still finds the deleted account $1"
    fi
}

# reregister NAME: a new device with new keys registers NAME (fresh home).
reregister() {
    mv "$E2E_DIR/home/$1" "$E2E_DIR/home/$1.old"
    register "$1"
}

# safety USER CONTACT: USER's safety number for CONTACT into $SN (60 digits).
safety() {
    sc_ok "$1" --json safety-number "$2"
    SN=$(jfield safety_number <"$E2E_DIR/last.out")
    [[ "$SN" =~ ^[0-9]{60}$ ]] || fail "safety number is not 60 digits: [$SN]"
}

log "alice and bob talk (trust on first use)"
sc_ok alice send bob "hello old bob"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b1.json" "hello old bob")" "1" "old bob got it"
sc_ok bob send alice "hello alice"
receive_json alice "$E2E_DIR/a1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a1.json" "hello alice")" "1" "alice got it"
safety alice bob
sn_old=$SN
safety bob alice
assert_eq "$SN" "$sn_old" "bob's safety number for alice"

log "the operator deletes bob; a new 'bob' registers with new keys"
delete_account bob
reregister bob

log "alice's send is refused: exit 5, nothing reaches the new bob"
sc alice send bob "for the old bob only"
assert_rc 5 "send after the identity change"
grep -q "trust" "$E2E_DIR/last.err" || fail "the refusal does not mention trust: $(cat "$E2E_DIR/last.err")"
sc alice --json send bob "second try"
assert_rc 5 "second send after the identity change"
assert_eq "$(jfield code <"$E2E_DIR/last.out")" "untrusted_identity" "--json error code"
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(events message "$E2E_DIR/b2.json" | wc -l)" "0" "messages the new bob received before trust"
grep -q -F "for the old bob only" "$E2E_DIR/b2.json" && fail "the new bob read a refused message"
assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "0" "envelopes queued by refused sends"
sc_ok alice --json contacts
grep '"name":"bob"' "$E2E_DIR/last.out" >"$E2E_DIR/bob.contact" || fail "bob not in alice's contacts"
assert_eq "$(jfield identity_changed <"$E2E_DIR/bob.contact")" "true" "contacts shows identity_changed"

log "the safety number changed; after trust both sides agree on the new one"
safety bob alice
sn_new_bob=$SN
[ "$sn_new_bob" != "$sn_old" ] || fail "the new bob's safety number equals the old one"
sc_ok alice trust bob
safety alice bob
sn_new_alice=$SN
assert_eq "$sn_new_alice" "$sn_new_bob" "alice's and new bob's safety numbers"
sc_ok alice --json contacts
grep '"name":"bob"' "$E2E_DIR/last.out" >"$E2E_DIR/bob.contact"
assert_eq "$(jfield identity_changed <"$E2E_DIR/bob.contact")" "false" "identity_changed after trust"

log "after trust, sending works both ways"
sc_ok alice send bob "hello new bob"
receive_json bob "$E2E_DIR/b3.json"
events message "$E2E_DIR/b3.json" >"$E2E_DIR/b3.msgs"
assert_eq "$(jfield body <"$E2E_DIR/b3.msgs")" "hello new bob" "new bob's only message"
sc_ok bob send alice "new bob here"
receive_json alice "$E2E_DIR/a3.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a3.json" "new bob here")" "1" "alice got new bob's message"

log "the other direction: a message from a changed identity is held until trust"
sc_ok carol send dave "hello old dave"
receive_json dave "$E2E_DIR/d1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/d1.json" "hello old dave")" "1" "old dave got it"
delete_account dave
reregister dave
sc_ok dave send carol "held until you trust me"
receive_json carol "$E2E_DIR/c1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/c1.json" "held until you trust me")" "0" \
    "message from the changed identity shown before trust"
assert_eq "$(events notice "$E2E_DIR/c1.json" | jfield code)" "identity_changed" "carol's notice"
sc_ok carol --json trust dave
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "held until you trust me")" "1" \
    "held message shown by trust"
receive_json carol "$E2E_DIR/c2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/c2.json" "held until you trust me")" "0" \
    "held message shown again after trust"
sc_ok carol --json history dave
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "held until you trust me")" "1" \
    "held message in carol's history once"
sc_ok carol send dave "trusted now"
receive_json dave "$E2E_DIR/d2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/d2.json" "trusted now")" "1" "new dave got carol's reply"

log "ok"
