#!/usr/bin/env bash
# Devices, and the promise that the server cannot silently add one:
#  - bob links a second device (link-request / device-add / link-finish):
#    alice's messages reach both, bob's other device gets a sync copy;
#    alice's safety number for bob stays the same (it covers account keys)
#    and she is told "bob linked a new device";
#  - the operator plants a device of its own in bob's account (another
#    account's real keys, with a forged or replayed add-signature): alice's
#    client refuses to send (exit 5) and nothing is queued for the planted
#    device; once it is gone, sending works again;
#  - bob removes his second device: it is no longer sent to and can no
#    longer receive.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
for u in alice bob mallory; do
    register "$u"
done

envelopes_for() { # USER DEVICE
    server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id
                WHERE a.username = '$1' AND e.device_id = $2"
}

log "alice and bob talk"
sc_ok alice send bob "hello bob"
receive_json bob "$E2E_DIR/b0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b0.json" "hello bob")" "1" "bob got it"
sc_ok alice --json safety-number bob
sn_one=$(jfield safety_number <"$E2E_DIR/last.out")
[[ "$sn_one" =~ ^[0-9]{60}$ ]] || fail "safety number is not 60 digits: [$sn_one]"

log "bob links a second device"
sc bob2 --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request
assert_rc 0 "link-request"
code=$(jfield code <"$E2E_DIR/last.out")
[[ "$code" =~ ^[0-9a-f]{138}$ ]] || fail "link code is not 138 hex: [$code]"
sc_ok bob --json device-add "$code"
assert_eq "$(jfield device <"$E2E_DIR/last.out")" "2" "new device id"
akey=$(jfield account_key <"$E2E_DIR/last.out")
[[ "$akey" =~ ^05[0-9a-f]{64}$ ]] || fail "account key is not 66 hex: [$akey]"
log "link-finish with a wrong account key is refused (exit 5)"
sc bob2 --json link-finish bob 2 "05$(printf '%064d' 0 | tr 0 7)"
assert_rc 5 "link-finish with an account key that did not sign the list"
sc_ok bob2 --json link-finish bob 2 "$akey"
assert_eq "$(jfield device <"$E2E_DIR/last.out")" "2" "linked device id"
sc_ok bob --json devices
assert_eq "$(jfield device <"$E2E_DIR/last.out" | tr '\n' ' ')" "1 2 " "bob's devices"

log "alice's message reaches both of bob's devices"
sc_ok alice send bob "to both of your devices"
for d in bob bob2; do
    receive_json "$d" "$E2E_DIR/$d.1.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/$d.1.json" "to both of your devices")" "1" "$d got it"
done
sc_ok alice --json contacts
assert_eq "$(jfield devices <"$E2E_DIR/last.out")" "2" "alice sees two devices of bob"
sc_ok alice --json safety-number bob
assert_eq "$(jfield safety_number <"$E2E_DIR/last.out")" "$sn_one" \
    "alice's safety number for bob after bob linked a device"
receive_json alice "$E2E_DIR/a0.json"
events notice "$E2E_DIR/a0.json" | jfield code | grep -x -- device_linked >/dev/null ||
    fail "alice was not told that bob linked a device: $(cat "$E2E_DIR/a0.json")"

log "bob writes from his second device; his first device gets a copy"
sc_ok bob2 send alice "from my second device"
receive_json alice "$E2E_DIR/a1.json"
events message "$E2E_DIR/a1.json" >"$E2E_DIR/a1.msgs"
assert_eq "$(jfield body <"$E2E_DIR/a1.msgs")" "from my second device" "alice's message"
assert_eq "$(jfield device <"$E2E_DIR/a1.msgs")" "2" "sender device"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(events outgoing "$E2E_DIR/b1.json" | jfield body)" "from my second device" "bob's sync copy"
assert_eq "$(events outgoing "$E2E_DIR/b1.json" | jfield to)" "alice" "sync copy's recipient"

# plant SIG_SQL: the operator moves mallory's real device (valid keys and
# signed prekey, auth key mallory holds) into bob's account as device 3,
# claiming bob's device 1 added it, with add_sig = SIG_SQL.
plant() {
    server_stop_ok
    server_sql "
      UPDATE one_time_prekeys SET account_id = (SELECT id FROM accounts WHERE username = 'bob'), device_id = 3
        WHERE account_id = (SELECT id FROM accounts WHERE username = 'mallory') AND device_id = 1;
      UPDATE devices SET account_id = (SELECT id FROM accounts WHERE username = 'bob'), device_id = 3,
        added_by = 1, add_sig = $1
        WHERE account_id = (SELECT id FROM accounts WHERE username = 'mallory') AND device_id = 1;"
    assert_eq "$(server_sql "SELECT count(*) FROM devices d JOIN accounts a ON a.id = d.account_id
                             WHERE a.username = 'bob'")" "3" "devices in bob's account after planting"
    server_restart
}
unplant() {
    server_stop_ok
    server_sql "
      UPDATE one_time_prekeys SET account_id = (SELECT id FROM accounts WHERE username = 'mallory'), device_id = 1
        WHERE account_id = (SELECT id FROM accounts WHERE username = 'bob') AND device_id = 3;
      UPDATE devices SET account_id = (SELECT id FROM accounts WHERE username = 'mallory'), device_id = 1,
        added_by = 0, add_sig = NULL
        WHERE account_id = (SELECT id FROM accounts WHERE username = 'bob') AND device_id = 3;"
    server_restart
}

for how in forged replayed; do
    if [ "$how" = forged ]; then
        log "the operator plants a device in bob's account with a forged add-signature"
        plant "randomblob(64)"
    else
        log "the operator plants a device with bob's real add-signature of device 2 (replayed)"
        plant "(SELECT add_sig FROM devices d JOIN accounts a ON a.id = d.account_id
                WHERE a.username = 'bob' AND d.device_id = 2)"
    fi
    sc alice send bob "for bob's eyes only ($how)"
    assert_rc 5 "[$how] send with a planted device"
    grep -q -i "device 3" "$E2E_DIR/last.err" || fail "[$how] the refusal does not name device 3: $(cat "$E2E_DIR/last.err")"
    assert_eq "$(envelopes_for bob 3)" "0" "[$how] envelopes queued for the planted device"
    sc alice group create "plot $how" bob
    assert_eq "$(envelopes_for bob 3)" "0" "[$how] envelopes for the planted device after a group create"
    unplant
    log "the planted device is gone: alice can send again, bob's devices read it, once"
    sc_ok alice send bob "after the $how device was removed"
    for d in bob bob2; do
        receive_json "$d" "$E2E_DIR/$d.$how.json"
        assert_eq "$(count_message_bodies "$E2E_DIR/$d.$how.json" "after the $how device was removed")" "1" \
            "$d got it"
        assert_eq "$(count_message_bodies "$E2E_DIR/$d.$how.json" "for bob's eyes only ($how)")" "0" \
            "$d got the refused message"
    done
done

log "bob removes his second device"
sc_ok bob --json device-remove 2
sc_ok bob --json devices
assert_eq "$(jfield device <"$E2E_DIR/last.out" | tr '\n' ' ')" "1 " "bob's devices after removal"
sc_ok alice send bob "only to your first device"
assert_eq "$(envelopes_for bob 2)" "0" "envelopes for the removed device"
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b2.json" "only to your first device")" "1" "bob's device 1 got it"
sc bob2 receive
# offline when removed: its login is refused like any failed login (4); had it
# been connected it would have got the device_removed notice (8)
case "$RC" in
4 | 8) ;;
*) fail "receive on the removed device: expected exit 4 or 8, got $RC: $(cat "$E2E_DIR/last.err")" ;;
esac

log "ok"
