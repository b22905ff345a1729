#!/usr/bin/env bash
# No silent device (issue 8): every device of an account is authorised by a
# device list its account key signed, and the hostile operator -- who edits
# the server's database while sottod is stopped -- cannot make a client
# encrypt to a device the account's owner did not list:
#  1. a removed device comes back (its row restored, under the same id):
#     alice's send is refused (exit 5, names the device), nothing is queued
#     for it;
#  2. the operator also serves the older signed list that still held it:
#     refused ("older device list ... version 2, already seen 3");
#  3. a ghost device at first contact: bob wrote to alice first; the
#     operator adds a device to bob's account (another account's real keys)
#     -> alice refuses; bob's own devices alert at their next login;
#  4. the operator swaps bob's account key for one it owns (with a list it
#     signed): alice refuses (safety number changed) until `trust`;
#  5. link and remove: alice's safety number for bob never changes, she is
#     told, and messages reach exactly the listed devices; a message from a
#     device not in the sender's list is not shown as genuine.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
for u in alice bob carol mallory; do
    register "$u"
done

acct_sql() { # the account id of USER, for SQL
    printf "(SELECT id FROM accounts WHERE username = '%s')" "$1"
}
envelopes_for() { # USER DEVICE
    server_sql "SELECT count(*) FROM envelopes WHERE account_id = $(acct_sql "$1") AND device_id = $2"
}
safety() { # USER CONTACT -> $SN
    sc_ok "$1" --json safety-number "$2"
    SN=$(jfield safety_number <"$E2E_DIR/last.out")
    [[ "$SN" =~ ^[0-9]{60}$ ]] || fail "safety number is not 60 digits: [$SN]"
}
link() { # HOME: links a new device of bob living in HOME; its id in $DEV
    sc "$1" --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request
    assert_rc 0 "link-request ($1)"
    local code akey
    code=$(jfield code <"$E2E_DIR/last.out")
    sc_ok bob --json device-add "$code"
    DEV=$(jfield device <"$E2E_DIR/last.out")
    akey=$(jfield account_key <"$E2E_DIR/last.out")
    sc_ok "$1" --json link-finish bob "$DEV" "$akey"
}
notices() { # FILE: the notice codes in a JSON event file, one per line
    events notice "$1" | jfield code
}
bob_changed() { # alice's `contacts`: bob's identity_changed
    sc_ok alice --json contacts
    grep '"bob"' "$E2E_DIR/last.out" | jfield identity_changed
}

log "bob writes to alice first: alice learns bob's account key from his message"
sc_ok bob send alice "hi alice, bob here"
receive_json alice "$E2E_DIR/a0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a0.json" "hi alice, bob here")" "1" "alice got bob's first message"
safety alice bob
sn0=$SN
safety bob alice
assert_eq "$SN" "$sn0" "both sides' safety numbers"

log "5a. bob links a phone: alice's safety number is unchanged and she is told"
link bobphone
phone=$DEV
assert_eq "$phone" "2" "the phone's device id"
sc_ok alice send bob "to both"
for h in bob bobphone; do
    receive_json "$h" "$E2E_DIR/$h.1.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/$h.1.json" "to both")" "1" "$h got it"
done
safety alice bob
assert_eq "$SN" "$sn0" "alice's safety number for bob after bob linked a device"
receive_json alice "$E2E_DIR/a1.json"
notices "$E2E_DIR/a1.json" | grep -x -- device_linked >/dev/null ||
    fail "alice was not told that bob linked a device: $(cat "$E2E_DIR/a1.json")"

# keep the phone's device row and the list that holds it (version 2), as
# the operator would, to bring them back later
old_row="$E2E_DIR/phone_row.sql"
sqlite3 -batch -cmd '.timeout 5000' -cmd '.mode insert devices' "$SERVER_DATA/sottod.db" \
    "SELECT * FROM devices WHERE account_id = $(acct_sql bob) AND device_id = $phone" >"$old_row"
[ -s "$old_row" ] || fail "no device row saved"
old_list=$(server_sql "SELECT hex(device_list) FROM accounts WHERE username = 'bob'")
assert_eq "$(server_sql "SELECT device_list_version FROM accounts WHERE username = 'bob'")" "2" \
    "bob's list version after the link"

log "5b. bob removes the (stolen) phone: list version 3; alice is told, safety number unchanged"
sc_ok bob --json device-remove "$phone"
assert_eq "$(server_sql "SELECT device_list_version FROM accounts WHERE username = 'bob'")" "3" \
    "bob's list version after the removal"
sc_ok alice send bob "after the phone was removed"
assert_eq "$(envelopes_for bob "$phone")" "0" "envelopes for the removed phone"
receive_json alice "$E2E_DIR/a2.json"
notices "$E2E_DIR/a2.json" | grep -x -- device_removed >/dev/null ||
    fail "alice was not told that bob removed a device: $(cat "$E2E_DIR/a2.json")"
safety alice bob
assert_eq "$SN" "$sn0" "alice's safety number for bob after bob removed a device"
receive_json bob "$E2E_DIR/b2.json"

log "1. the operator brings the removed phone back (its row, same id): refused"
server_stop_ok
server_sql "$(cat "$old_row")"
assert_eq "$(server_sql "SELECT count(*) FROM devices WHERE account_id = $(acct_sql bob)")" "2" \
    "bob's devices on the server after the restore"
server_restart
sc alice send bob "for bob only (1)"
assert_rc 5 "send with the removed device brought back"
grep -q "device $phone of bob" "$E2E_DIR/last.err" ||
    fail "the refusal does not name the device: $(cat "$E2E_DIR/last.err")"
assert_eq "$(envelopes_for bob "$phone")" "0" "envelopes for the restored phone"

log "2. ... and also serves the older signed list that held it: refused as older"
server_stop_ok
cur_list=$(server_sql "SELECT hex(device_list) FROM accounts WHERE username = 'bob'")
server_sql "UPDATE accounts SET device_list = X'$old_list', device_list_version = 2 WHERE username = 'bob'"
server_restart
sc alice send bob "for bob only (2)"
assert_rc 5 "send with the older device list served"
grep -q "older device list for bob: version 2, already seen 3" "$E2E_DIR/last.err" ||
    fail "the refusal does not say the list is older: $(cat "$E2E_DIR/last.err")"
assert_eq "$(envelopes_for bob "$phone")" "0" "envelopes for the restored phone (older list)"
sc alice --json safety-number bob
assert_eq "$(jfield safety_number <"$E2E_DIR/last.out")" "$sn0" "safety number while the server lies"

log "bob's own device alerts: the server lists a device his signed list does not hold"
sc bob --json receive
cp "$E2E_DIR/last.out" "$E2E_DIR/b3.json"
notices "$E2E_DIR/b3.json" | grep -x -- own_device_alert >/dev/null ||
    fail "bob's device did not alert: rc=$RC $(cat "$E2E_DIR/b3.json" "$E2E_DIR/last.err")"

log "the operator puts things back; alice and bob talk again"
server_stop_ok
server_sql "DELETE FROM devices WHERE account_id = $(acct_sql bob) AND device_id = $phone;
            UPDATE accounts SET device_list = X'$cur_list', device_list_version = 3
            WHERE username = 'bob'"
server_restart
sc_ok alice send bob "back to normal"
receive_json bob "$E2E_DIR/b4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b4.json" "back to normal")" "1" "bob got it"

log "3. a ghost device: the operator moves mallory's real device into bob's account"
server_stop_ok
server_sql "
  UPDATE one_time_prekeys SET account_id = $(acct_sql bob), device_id = 7
    WHERE account_id = $(acct_sql mallory) AND device_id = 1;
  UPDATE devices SET account_id = $(acct_sql bob), device_id = 7
    WHERE account_id = $(acct_sql mallory) AND device_id = 1;"
server_restart
sc alice send bob "for bob only (3)"
assert_rc 5 "send with a ghost device"
grep -q "device 7 of bob" "$E2E_DIR/last.err" ||
    fail "the refusal does not name the ghost: $(cat "$E2E_DIR/last.err")"
assert_eq "$(envelopes_for bob 7)" "0" "envelopes for the ghost device"
sc carol send bob "carol never wrote to bob before"
assert_rc 5 "carol's first contact with bob while the ghost is there"
assert_eq "$(envelopes_for bob 7)" "0" "envelopes for the ghost device (carol)"
log "the ghost writes to alice as bob's device 7: not shown as genuine"
# the operator runs mallory's device (its auth key matches the planted row)
# as bob's device 7
mstore="$E2E_DIR/home/mallory/sotto/mallory/store.db"
sqlite3 -batch "$mstore" "UPDATE client_config SET value = 'bob' WHERE key = 'username';
                          UPDATE client_config SET value = 7 WHERE key = 'device_id';"
sc mallory send alice "this is bob, honestly"
receive_json alice "$E2E_DIR/a5.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a5.json" "this is bob, honestly")" "0" \
    "the ghost's message shown as bob's"
notices "$E2E_DIR/a5.json" | grep -x -- unlisted_device >/dev/null ||
    fail "alice was not told about a message from an unlisted device: $(cat "$E2E_DIR/a5.json")"
sqlite3 -batch "$mstore" "UPDATE client_config SET value = 'mallory' WHERE key = 'username';
                          UPDATE client_config SET value = 1 WHERE key = 'device_id';"
sc_ok bob --json receive
cp "$E2E_DIR/last.out" "$E2E_DIR/b5.json"
notices "$E2E_DIR/b5.json" | grep -x -- own_device_alert >/dev/null ||
    fail "bob's device did not alert about the ghost: $(cat "$E2E_DIR/b5.json")"
server_stop_ok
server_sql "
  UPDATE one_time_prekeys SET account_id = $(acct_sql mallory), device_id = 1
    WHERE account_id = $(acct_sql bob) AND device_id = 7;
  UPDATE devices SET account_id = $(acct_sql mallory), device_id = 1
    WHERE account_id = $(acct_sql bob) AND device_id = 7;"
server_restart
sc_ok alice send bob "the ghost is gone"
receive_json bob "$E2E_DIR/b6.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b6.json" "the ghost is gone")" "1" "bob got it"
for t in "for bob only (1)" "for bob only (2)" "for bob only (3)"; do
    assert_eq "$(count_message_bodies "$E2E_DIR/b6.json" "$t")" "0" "a refused message arrived later"
done

log "4. the operator swaps bob's account key for mallory's (with mallory's own signed list)"
server_stop_ok
saved_key=$(server_sql "SELECT hex(account_key) || ' ' || hex(device_list) || ' ' || device_list_version
                        FROM accounts WHERE username = 'bob'")
server_sql "UPDATE accounts SET (account_key, device_list, device_list_version) =
              (SELECT account_key, device_list, device_list_version FROM accounts WHERE username = 'mallory')
            WHERE username = 'bob'"
server_restart
sc alice send bob "for bob only (4)"
assert_rc 5 "send with a substituted account key"
grep -q -i "safety number with bob changed" "$E2E_DIR/last.err" ||
    fail "the refusal does not say the safety number changed: $(cat "$E2E_DIR/last.err")"
sc_ok alice --json safety-number bob
[ "$(jfield safety_number <"$E2E_DIR/last.out")" != "$sn0" ] ||
    fail "the safety number shows no change for a substituted account key"
assert_eq "$(bob_changed)" "true" "alice's contacts show bob's change"
server_stop_ok
read -r k l v <<<"$saved_key"
server_sql "UPDATE accounts SET account_key = X'$k', device_list = X'$l', device_list_version = $v
            WHERE username = 'bob'"
server_restart
log "the real key is back: the change is void; trust pins nothing the server no longer serves"
sc alice trust bob
assert_rc 8 "trust after the server took the substituted key back"
grep -q "earlier account key again" "$E2E_DIR/last.err" ||
    fail "trust does not say the change is void: $(cat "$E2E_DIR/last.err")"
safety alice bob
assert_eq "$SN" "$sn0" "alice's safety number for bob once the real key is back"
assert_eq "$(bob_changed)" "false" "alice's contacts after the real key is back"
sc_ok alice send bob "the real bob again"
receive_json bob "$E2E_DIR/b7.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b7.json" "the real bob again")" "1" "bob got it"
assert_eq "$(count_message_bodies "$E2E_DIR/b7.json" "for bob only (4)")" "0" \
    "the message refused during the swap arrived"

log "a forged list for 'bob' (the operator's own account key, username bob) is refused too"
server_stop_ok
server_sql "UPDATE accounts SET username = 'bobx' WHERE username = 'bob'"
server_restart
register_as() { # HOME NAME: registers NAME from a fresh home
    sc "$1" --server "$SERVER_URL" --pin "$SERVER_FP" register "$2"
    assert_rc 0 "register $2 from $1"
}
register_as evilbob bob
server_stop_ok
evil=$(server_sql "SELECT hex(account_key) || ' ' || hex(device_list) || ' ' || device_list_version
                   FROM accounts WHERE username = 'bob'")
server_sql "DELETE FROM devices WHERE account_id = $(acct_sql bob);
            DELETE FROM one_time_prekeys WHERE account_id = $(acct_sql bob);
            DELETE FROM accounts WHERE username = 'bob';
            UPDATE accounts SET username = 'bob' WHERE username = 'bobx'"
read -r k l v <<<"$evil"
server_sql "UPDATE accounts SET account_key = X'$k', device_list = X'$l', device_list_version = $v
            WHERE username = 'bob'"
server_restart
sc alice send bob "for bob only (5)"
assert_rc 5 "send with an operator-signed list for bob"
grep -q -i "safety number with bob changed" "$E2E_DIR/last.err" ||
    fail "the refusal does not say the safety number changed: $(cat "$E2E_DIR/last.err")"
log "ok"
