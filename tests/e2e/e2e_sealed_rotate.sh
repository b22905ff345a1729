#!/usr/bin/env bash
# Cutting a token holder off (issue 12; docs/protocol.md "Sealed sender",
# "Profiles"; docs/cli.md `block`, `profile rotate-key`): a contact holding
# our profile key derives our delivery token; blocking them replaces the key.
#  1. alice, bob and mallory write to each other: each holds the others'
#     profile keys, mallory's and bob's messages to alice go sealed (the
#     server's queued rows carry no sender);
#  2. alice (and her laptop) blocks mallory: her profile key and delivery
#     token change on the server; mallory's sealed send with the old token is
#     refused by the server (UNAUTHENTICATED: her client notes it and sends
#     identified, and alice drops it as blocked); bob got the new key in a
#     profile-key update and still sends sealed (no sender in the server's
#     row), and alice reads him; alice's laptop holds the new key (sync);
#     alice's profile still opens for bob under the new key;
#  3. `profile rotate-key` (and the daemon's rotateProfileKey) does the same
#     without a block: one contact notified (bob, not the blocked mallory),
#     bob still seals;
#  4. a block while the server is unreachable still blocks; the rotation
#     stays due and the next receive finishes it.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register_all alice bob mallory
link_device alice laptop
sc_ok laptop receive

store_of() { find "$E2E_DIR/home/$1" -name store.db | head -n 1; }
own_key() { sqlite3 "$(store_of "$1")" "SELECT hex(value) FROM client_config WHERE key = 'profile_key'"; }
# envelopes queued for alice's device 1, and those of them with no sender
queued_alice() { server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = 'alice' AND e.device_id = 1"; }
queued_alice_sealed() { server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = 'alice' AND e.device_id = 1 AND e.source_id = 0"; }
server_token() { server_sql "SELECT hex(delivery_token) FROM accounts WHERE username = 'alice'"; }
# from_of FILE BODY: the sender of the message event with BODY (none: "")
from_of() {
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
# sealed_send USER TEXT: USER sends TEXT to alice with SOTTO_DEBUG_SEALED=1
# while alice is offline; prints "sealed" when the server queued it without
# a sender, "identified" when with one; the client's notes in last.err
sealed_send() {
    local q0 s0
    q0=$(queued_alice)
    s0=$(queued_alice_sealed)
    SOTTO_DEBUG_SEALED=1 sc "$1" send alice "$2"
    assert_rc 0 "$1 send alice $2"
    [ "$(queued_alice)" -eq $((q0 + 1)) ] || fail "$1's message is not queued for alice"
    if [ "$(queued_alice_sealed)" -eq $((s0 + 1)) ]; then echo sealed; else echo identified; fi
}

log "1. contacts of each other"
sc_ok alice profile set --name "Alice L"
sc_ok laptop receive
sc_ok alice send bob "hi bob"
sc_ok alice send mallory "hi mallory"
sc_ok bob receive
sc_ok mallory receive
sc_ok bob send mallory "hi mallory from bob"
sc_ok mallory receive
assert_eq "$(sealed_send bob "bob one")" "sealed" "bob -> alice before the block"
assert_eq "$(sealed_send mallory "mallory one")" "sealed" "mallory -> alice before the block"
receive_json alice "$E2E_DIR/a1.json"
assert_eq "$(from_of "$E2E_DIR/a1.json" "mallory one")" "mallory" "alice reads mallory before the block"
sc_ok laptop receive
key0=$(own_key alice)
tok0=$(server_token)
if [ -z "$key0" ] || [ -z "$tok0" ]; then fail "alice has no profile key ($key0) or token ($tok0)"; fi
assert_eq "$(own_key laptop)" "$key0" "the laptop holds alice's key"

log "2. alice blocks mallory: a new key and token"
sc_ok alice block mallory
key1=$(own_key alice)
tok1=$(server_token)
[ "$key1" != "$key0" ] || fail "the block did not replace alice's profile key"
[ "$tok1" != "$tok0" ] || fail "the block did not replace alice's delivery token on the server"
echo "profile key ${key0:0:8}... -> ${key1:0:8}..., token ${tok0:0:8}... -> ${tok1:0:8}..."
assert_eq "$(sealed_send mallory "mallory after the block")" "identified" \
    "mallory's send after the block (old token)"
grep -q "the server refused alice's delivery token" "$E2E_DIR/last.err" ||
    fail "mallory's sealed send was not refused by the server: $(cat "$E2E_DIR/last.err")"
sc_ok bob receive # the profile-key update
assert_eq "$(sqlite3 "$(store_of bob)" "SELECT hex(profile_key) FROM client_profiles WHERE name = 'alice'")" \
    "$key1" "bob holds alice's new key"
assert_eq "$(sealed_send bob "bob after the block")" "sealed" "bob -> alice after the block"
if grep -q "refused" "$E2E_DIR/last.err"; then fail "bob's token refused: $(cat "$E2E_DIR/last.err")"; fi
receive_json alice "$E2E_DIR/a2.json"
assert_eq "$(from_of "$E2E_DIR/a2.json" "bob after the block")" "bob" "alice reads bob's sealed message"
assert_eq "$(from_of "$E2E_DIR/a2.json" "mallory after the block")" "" "mallory's message is dropped"
sc_ok laptop receive
assert_eq "$(own_key laptop)" "$key1" "the laptop got the new key (SyncMessage.profile_key)"
sc_ok bob --json profile show alice
grep -q "Alice L" "$E2E_DIR/last.out" || fail "alice's profile does not open under the new key: $(cat "$E2E_DIR/last.out") $(cat "$E2E_DIR/last.err")"
sc mallory profile show alice
assert_rc 7 "mallory's fetch of alice's profile (old key: does not open)"
if grep -q "Alice L" "$E2E_DIR/last.out"; then fail "mallory still opens alice's profile"; fi

log "3. profile rotate-key: only bob is told"
sc_ok alice --json profile rotate-key
assert_eq "$(jfield contacts_notified <"$E2E_DIR/last.out")" "1" "contacts notified (bob; not mallory)"
key2=$(own_key alice)
[ "$key2" != "$key1" ] || fail "rotate-key did not replace the key"
sc_ok bob receive
assert_eq "$(sealed_send bob "bob after rotate-key")" "sealed" "bob -> alice after rotate-key"
receive_json alice "$E2E_DIR/a3.json"
assert_eq "$(from_of "$E2E_DIR/a3.json" "bob after rotate-key")" "bob" "alice reads bob"

log "3b. through the daemon: rotateProfileKey"
HERE=$(cd "$(dirname "$0")" && pwd)
daemon_start alice
SOCK="$SOCK" python3 - "$HERE" <<'PY' ||
import os, sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc
r = Rpc(os.environ["SOCK"])
m = r.call("rotateProfileKey", {"account": "alice"})
res = m.get("result", {})
if res.get("type") != "profile_key_rotated" or res.get("contacts_notified") != 1:
    print("FAIL: rotateProfileKey: %r" % m, file=sys.stderr)
    sys.exit(1)
PY
    fail "daemon rotateProfileKey"
bg_stop "$DAEMON_PID"
unset XDG_RUNTIME_DIR
key2b=$(own_key alice)
[ "$key2b" != "$key2" ] || fail "rotateProfileKey did not replace the key"
key2=$key2b
sc_ok bob receive
assert_eq "$(sealed_send bob "bob after rotateProfileKey")" "sealed" "bob -> alice after rotateProfileKey"
sc_ok alice receive

log "4. a block while the server is down: the rotation is finished later"
server_stop
sc alice unblock mallory
sc alice block mallory
assert_rc 0 "block while the server is down"
grep -q "could not be replaced now" "$E2E_DIR/last.err" || fail "no note of the due rotation: $(cat "$E2E_DIR/last.err")"
assert_eq "$(own_key alice)" "$key2" "the key is unchanged while offline"
server_restart
sc_ok alice receive
key3=$(own_key alice)
[ "$key3" != "$key2" ] || fail "the due rotation was not finished by the next receive"
assert_eq "$(sqlite3 "$(store_of alice)" "SELECT count(*) FROM client_config WHERE key IN ('profile_rotate_due', 'profile_key_next')")" \
    "0" "nothing left due"
sc_ok bob receive
assert_eq "$(sealed_send bob "bob after the late rotation")" "sealed" "bob -> alice after the late rotation"
assert_eq "$(sealed_send mallory "mallory at last")" "identified" "mallory after the late rotation"

log "ok"
