#!/usr/bin/env bash
# Key transparency with an honest server (issue 9; docs/cli.md "Key
# transparency"):
#  - alice's first message to bob pins bob's key only after the key
#    directory holds it: `kt check bob` shows bob's real account key, list
#    version and update counter; `kt status` shows the head alice holds,
#    signed by the key `sottod --kt-info` prints;
#  - bob's own check is clean;
#  - a device linked with the server's keys given out of band (--kt-key)
#    sets its baseline and stays clean while bob links and removes another
#    device (each a legitimate update: the counter moves with the version);
#  - requiring an auditor the server does not have: a NEW contact is refused
#    (exit 9, the message stays queued) while sending to bob, pinned before,
#    still works; without the auditor the queued message goes out.
# The hostile-operator cases are other tests.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
for u in alice bob carol; do
    register "$u"
done

# the server's key-transparency keys as the operator prints them
"$SOTTOD" --data-dir "$SERVER_DATA" --kt-info >"$E2E_DIR/ktinfo" 2>"$E2E_DIR/ktinfo.err" ||
    fail "sottod --kt-info: $(cat "$E2E_DIR/ktinfo.err")"
kt_key=$(sed -n 's/^kt_server_key \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/ktinfo")
kt_vrf=$(sed -n 's/^kt_vrf_key \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/ktinfo")
[ -n "$kt_key" ] && [ -n "$kt_vrf" ] || fail "no keys in sottod --kt-info: $(cat "$E2E_DIR/ktinfo")"

# bob's account key as his own store holds it (never sent anywhere by this test)
account_key_of() {
    python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT hex(value) FROM client_config WHERE key = ?", ("account_pk",)).fetchone()[0].lower())
' "$E2E_DIR/home/$1/sotto/$1/store.db"
}
bob_key=$(account_key_of bob)
[[ "$bob_key" =~ ^05[0-9a-f]{64}$ ]] || fail "bob's account key: [$bob_key]"

log "alice writes to bob: his key is pinned once the directory holds it"
sc_ok alice send bob "hello bob"
sc_ok alice --json kt check bob
assert_eq "$(jfield account_key <"$E2E_DIR/last.out")" "$bob_key" "bob's key in the directory"
assert_eq "$(jfield version <"$E2E_DIR/last.out")" "1" "bob's list version"
assert_eq "$(jfield counter <"$E2E_DIR/last.out")" "1" "bob's update counter"
assert_eq "$(jfield pinned <"$E2E_DIR/last.out")" "true" "bob pinned by alice"
assert_eq "$(jfield matches <"$E2E_DIR/last.out")" "true" "alice's pin is the directory's key"
sc_ok alice kt check bob
grep -q "account key  $bob_key" "$E2E_DIR/last.out" || fail "human kt check: $(cat "$E2E_DIR/last.out")"

log "alice's status: a head signed by the server's key"
sc_ok alice --json kt status
assert_eq "$(jfield server_key <"$E2E_DIR/last.out")" "$kt_key" "pinned server key"
assert_eq "$(jfield vrf_key <"$E2E_DIR/last.out")" "$kt_vrf" "pinned VRF key"
size=$(jfield head.size <"$E2E_DIR/last.out")
[[ "$size" =~ ^[0-9]+$ ]] && [ "$size" -ge 3 ] || fail "held head size [$size] (3 accounts registered)"
assert_eq "$(jfield evidence <"$E2E_DIR/last.out")" "0" "no evidence"

log "no such user"
sc alice kt check nobody.here
assert_rc 6 "kt check of an unknown user"

log "bob's own entry is clean"
sc_ok bob --json kt check
assert_eq "$(jfield published <"$E2E_DIR/last.out")" "true" "bob's entry published"
assert_eq "$(jfield alerts <"$E2E_DIR/last.out")" "[]" "no alert for bob"
assert_eq "$(jfield version <"$E2E_DIR/last.out")" "1" "bob's version"
receive_json bob "$E2E_DIR/b1.json"
grep -q '"hello bob"' "$E2E_DIR/b1.json" || fail "bob did not get alice's message"
if grep -q 'key directory' "$E2E_DIR/b1.json"; then
    fail "bob got a key-directory alert: $(cat "$E2E_DIR/b1.json")"
fi

# link_device NAME: links NAME as a new device of bob (the server's KT keys
# given out of band); prints nothing
link_device() {
    sc "$1" --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request \
        --kt-key "$kt_key" --kt-vrf-key "$kt_vrf"
    assert_rc 0 "link-request $1"
    local code akey dev
    code=$(jfield code <"$E2E_DIR/last.out")
    sc_ok bob --json device-add "$code"
    dev=$(jfield device <"$E2E_DIR/last.out")
    akey=$(jfield account_key <"$E2E_DIR/last.out")
    sc_ok "$1" --json link-finish bob "$dev" "$akey"
    LINKED_ID=$dev
}

# wait_version WHO V: until WHO's own check sees list version V published
wait_version() {
    local i v=""
    for i in $(seq 1 100); do
        sc "$1" --json kt check
        assert_rc 0 "kt check by $1"
        v=$(jfield version <"$E2E_DIR/last.out")
        [ "$v" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$1: the directory never published version $2 (last: $v)"
}

log "bob links device 2 (KT keys given out of band): its baseline, clean"
link_device bob2
wait_version bob2 2
assert_eq "$(jfield alerts <"$E2E_DIR/last.out")" "[]" "bob2: no alert"
assert_eq "$(jfield counter <"$E2E_DIR/last.out")" "2" "bob2: update 2"
sc_ok bob2 --json kt status
assert_eq "$(jfield server_key <"$E2E_DIR/last.out")" "$kt_key" "bob2 pinned the given key"
assert_eq "$(jfield own.version <"$E2E_DIR/last.out")" "2" "bob2's baseline version"

log "bob links device 3, then removes it: bob2 stays clean"
link_device bob3
sc_ok bob --json device-remove "$LINKED_ID"
wait_version bob2 4
assert_eq "$(jfield alerts <"$E2E_DIR/last.out")" "[]" "bob2: no alert after add + remove"
assert_eq "$(jfield counter <"$E2E_DIR/last.out")" "4" "bob2: update 4"
sc_ok bob2 --json kt status
assert_eq "$(jfield own.counter <"$E2E_DIR/last.out")" "4" "bob2's baseline moved"
sc_ok bob2 --json receive
if grep -q 'key directory' "$E2E_DIR/last.out"; then
    fail "bob2 got a key-directory alert: $(cat "$E2E_DIR/last.out")"
fi
sc_ok bob --json kt check
assert_eq "$(jfield alerts <"$E2E_DIR/last.out")" "[]" "bob (primary): no alert"

log "alice requires an auditor the server does not have"
aud=$(printf '%064d' 0 | tr 0 a)
sc_ok alice kt auditor add "$aud"
sc_ok alice --json kt auditor list
assert_eq "$(jfield auditors <"$E2E_DIR/last.out")" "[\"$aud\"]" "alice's auditors"
sc alice send carol "to a new contact"
assert_rc 9 "send to a new contact without the auditor's countersignature"
grep -q "not countersigned by auditor $aud" "$E2E_DIR/last.err" ||
    fail "no clear reason: $(cat "$E2E_DIR/last.err")"
sc alice kt check carol
assert_rc 9 "kt check carol without the countersignature"
log "sending to bob, pinned before, still works"
sc_ok alice send bob "still fine"
log "without the auditor, the queued message to carol goes out"
sc_ok alice kt auditor remove "$aud"
sc_ok alice --json flush
assert_eq "$(jfield queued <"$E2E_DIR/last.out")" "0" "queue empty after the flush"
receive_json carol "$E2E_DIR/c1.json"
grep -q '"to a new contact"' "$E2E_DIR/c1.json" || fail "carol did not get it: $(cat "$E2E_DIR/c1.json")"

log "ok"
