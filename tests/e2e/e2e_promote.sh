#!/usr/bin/env bash
# Promoting another device (`sotto promote`, docs/protocol.md "Promoting
# another device"): bob (primary, device 1) links bob2 and bob3, then hands
# the account key to bob2 before retiring device 1:
#  - only the primary can promote, only a device of the signed list other
#    than itself, and only one that has keys (exit 8);
#  - bob3 is told but gets no key; bob2 gets the key (the same bytes as
#    bob's) once it receives; bob keeps it until it sees bob2's
#    confirmation, then no longer holds it;
#  - the key never reaches the server (raw or hex);
#  - now bob2 can remove device 1 and link a new device (with an id never
#    used before), and bob cannot (exit 8);
#  - alice's safety number for bob is unchanged throughout and her messages
#    reach exactly bob's current devices.
# A transfer with another account key is refused on the receiving side:
# tests/unit/test_client_promote.c (it cannot be made with the CLI).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

log "help"
sc bob promote --help
assert_rc 0 "promote --help"
assert_eq "$(head -n 1 "$E2E_DIR/last.out")" "usage: sotto --account NAME promote DEVICE_ID" \
    "promote --help usage"
grep -q "^  8  not registered / not the primary" "$E2E_DIR/last.out" || fail "promote --help: exit 8"
sc bob --help
grep -q "^  promote DEVICE_ID" "$E2E_DIR/last.out" || fail "--help does not list promote"

server_start
for u in alice bob; do
    register "$u"
done

store() { echo "$E2E_DIR/home/$1/sotto/$1/store.db"; }
holds_key() { # USER -> 0 or 1
    sqlite3 -batch "$(store "$1")" "SELECT count(*) FROM client_config WHERE key = 'account_sk'"
}
key_hex() { # USER
    sqlite3 -batch "$(store "$1")" "SELECT hex(value) FROM client_config WHERE key = 'account_sk'"
}
envelopes_for() { # USER DEVICE
    server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id
                WHERE a.username = '$1' AND e.device_id = $2"
}
safety() { # -> $SN: alice's safety number for bob
    sc_ok alice --json safety-number bob
    SN=$(jfield safety_number <"$E2E_DIR/last.out")
    [[ "$SN" =~ ^[0-9]{60}$ ]] || fail "safety number is not 60 digits: [$SN]"
}
notices() { # FILE -> the notice codes, one per line
    events notice "$1" | jfield code
}
has_notice() { # FILE CODE: whether FILE holds a notice with CODE (no grep -q in a
    # pipeline: it may end before the writer, which then fails under pipefail)
    local codes
    codes=$(notices "$1")
    grep -qx -- "$2" <<<"$codes"
}
link() { # PRIMARY NEWDEV EXPECTED_ID
    sc "$2" --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request
    assert_rc 0 "link-request on $2"
    local code akey
    code=$(jfield code <"$E2E_DIR/last.out")
    sc_ok "$1" --json device-add "$code"
    assert_eq "$(jfield device <"$E2E_DIR/last.out")" "$3" "id of $2"
    akey=$(jfield account_key <"$E2E_DIR/last.out")
    sc_ok "$2" --json link-finish bob "$3" "$akey"
}

log "alice and bob talk"
sc_ok alice send bob "hello bob"
receive_json bob "$E2E_DIR/b0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b0.json" "hello bob")" "1" "bob got it"
safety
sn0=$SN

log "bob links bob2 and bob3"
link bob bob2 2
link bob bob3 3
sc_ok bob --json devices
assert_eq "$(jfield device <"$E2E_DIR/last.out" | tr '\n' ' ')" "1 2 3 " "bob's devices"
assert_eq "$(holds_key bob):$(holds_key bob2):$(holds_key bob3)" "1:0:0" "who holds the key after linking"

log "who may promote whom"
sc bob2 promote 3
assert_rc 8 "promote on a device that is not the primary"
grep -q "does not hold the account key" "$E2E_DIR/last.err" || fail "why: $(cat "$E2E_DIR/last.err")"
sc bob promote 1
assert_rc 8 "promote this device"
sc bob promote 9
assert_rc 8 "promote a device not in the list"
grep -q "device 9 is not in your account's signed device list" "$E2E_DIR/last.err" ||
    fail "why: $(cat "$E2E_DIR/last.err")"
sc bob promote two
assert_rc 2 "promote with a bad device id"
assert_eq "$(holds_key bob2):$(holds_key bob3)" "0:0" "nothing was handed over by the refused attempts"

log "bob promotes bob2"
sc_ok bob --json promote 2
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "promote_sent" "promote --json type"
assert_eq "$(jfield device <"$E2E_DIR/last.out")" "2" "promote --json device"
assert_eq "$(holds_key bob)" "1" "bob keeps the key until bob2 confirms"
assert_eq "$(sqlite3 -batch "$(store bob)" "SELECT count(*) FROM client_outgoing")" "0" \
    "nothing of the transfer is queued on bob"
bob_key=$(key_hex bob)
[[ "$bob_key" =~ ^[0-9A-F]{64}$ ]] || fail "bob's account key is not 32 bytes: [$bob_key]"
log "the account key never reaches the server"
hits=$(python3 - "$SERVER_DATA" "$bob_key" <<'PYEOF'
import os, sys
root, key = sys.argv[1], bytes.fromhex(sys.argv[2])
n = 0
for d, _, files in os.walk(root):
    for f in files:
        b = open(os.path.join(d, f), "rb").read()
        n += b.count(key) + b.count(key.hex().encode()) + b.count(key.hex().upper().encode())
print(n)
PYEOF
)
assert_eq "$hits" "0" "copies of bob's account private key in the server's files"

log "bob3 is told, and gets no key"
receive_json bob3 "$E2E_DIR/b3.json"
has_notice "$E2E_DIR/b3.json" primary_changed || fail "bob3 was not told: $(cat "$E2E_DIR/b3.json")"
[[ "$(events notice "$E2E_DIR/b3.json" | jfield body)" == *"device 2 of your account is now the primary"* ]] ||
    fail "bob3's notice: $(cat "$E2E_DIR/b3.json")"
assert_eq "$(holds_key bob3)" "0" "bob3 holds the account key"

log "bob2 receives: it holds the key, the same as bob's"
receive_json bob2 "$E2E_DIR/b2.json"
has_notice "$E2E_DIR/b2.json" primary_received || fail "bob2 was not told: $(cat "$E2E_DIR/b2.json")"
assert_eq "$(holds_key bob2)" "1" "bob2 holds the account key"
assert_eq "$(key_hex bob2)" "$bob_key" "bob2's account key"
assert_eq "$(holds_key bob)" "1" "bob still holds the key before it sees the confirmation"

log "bob receives bob2's confirmation: it no longer holds the key"
receive_json bob "$E2E_DIR/b1.json"
has_notice "$E2E_DIR/b1.json" primary_confirmed || fail "bob was not told: $(cat "$E2E_DIR/b1.json")"
[[ "$(events notice "$E2E_DIR/b1.json" | jfield body)" == \
    *"device 2 confirmed: it is now the primary; this device no longer holds the account key"* ]] ||
    fail "bob's notice: $(cat "$E2E_DIR/b1.json")"
assert_eq "$(holds_key bob)" "0" "bob holds the account key after the confirmation"
assert_eq "$(sqlite3 -batch "$(store bob)" "SELECT count(*) FROM client_config WHERE key = 'promote_pending'")" \
    "0" "bob's pending promotion"
receive_json bob3 "$E2E_DIR/b3b.json"
assert_eq "$(holds_key bob3)" "0" "bob3 holds the account key after the confirmation"
safety
assert_eq "$SN" "$sn0" "alice's safety number for bob after the promotion"

log "the old primary can no longer change the devices"
sc bob4 --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request
assert_rc 0 "link-request on bob4"
code4=$(jfield code <"$E2E_DIR/last.out")
sc bob device-add "$code4"
assert_rc 8 "device-add on the old primary"
sc bob device-remove 3
assert_rc 8 "device-remove on the old primary"
sc bob promote 2
assert_rc 8 "promote on the old primary"
sc bob backup create "$E2E_DIR/bob.backup"
assert_rc 8 "backup create on the old primary"

log "the new primary retires device 1 and links bob4"
sc_ok bob2 --json device-remove 1
sc_ok bob2 --json devices
assert_eq "$(jfield device <"$E2E_DIR/last.out" | tr '\n' ' ')" "2 3 " "bob's devices after removing 1"
sc_ok bob2 --json device-add "$code4"
assert_eq "$(jfield device <"$E2E_DIR/last.out")" "4" "the new device's id (never one used before)"
akey4=$(jfield account_key <"$E2E_DIR/last.out")
log "promote to a device that has no keys yet (link not finished) is refused"
sc bob2 promote 4
assert_rc 8 "promote a device without keys"
grep -q "device 4 of bob has no keys on the server yet" "$E2E_DIR/last.err" ||
    fail "why: $(cat "$E2E_DIR/last.err")"
sc_ok bob4 --json link-finish bob 4 "$akey4"
sc bob device-add "$code4"
assert_rc 8 "device-add on the removed old primary"

log "alice: same safety number, told about the changes, reaches exactly bob's devices"
sc_ok alice send bob "after the promotion"
assert_eq "$(envelopes_for bob 1)" "0" "envelopes for the retired device 1"
for d in bob2 bob3 bob4; do
    receive_json "$d" "$E2E_DIR/$d.after.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/$d.after.json" "after the promotion")" "1" "$d got it"
done
receive_json alice "$E2E_DIR/a1.json"
has_notice "$E2E_DIR/a1.json" device_removed || fail "alice not told of the removal: $(cat "$E2E_DIR/a1.json")"
has_notice "$E2E_DIR/a1.json" device_linked || fail "alice not told of the link: $(cat "$E2E_DIR/a1.json")"
safety
assert_eq "$SN" "$sn0" "alice's safety number for bob after device 1 was retired"

log "the new primary can promote in turn; bob3 takes over"
sc_ok bob2 promote 3
receive_json bob3 "$E2E_DIR/b3c.json"
assert_eq "$(key_hex bob3)" "$bob_key" "bob3's account key"
receive_json bob4 "$E2E_DIR/b4.json"
assert_eq "$(holds_key bob4)" "0" "bob4 holds the account key"
receive_json bob2 "$E2E_DIR/b2c.json"
assert_eq "$(holds_key bob2):$(holds_key bob3):$(holds_key bob4)" "0:1:0" "who holds the key at the end"

log "ok"
