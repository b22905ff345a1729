#!/usr/bin/env bash
# Account recovery (issue 8): alice and bob talk; bob (primary) links bob2
# and makes a backup; ALL of bob's devices are lost; bob restores on a new
# machine with the recovery code:
#  - a wrong code is refused (exit 2, --json code wrong_recovery_code) and
#    creates nothing; a non-primary device cannot make a backup (exit 8);
#  - the restored device re-takes "bob" (no --server needed): alice's safety
#    number for bob is unchanged, she is told about the device change
#    (device_changed, device_removed), her next message reaches the restored
#    device and nothing is queued for the old device 2; what waited for the
#    old devices is gone with them;
#  - the lost devices, brought back from a copy, cannot log in any more;
#  - contacts, verified flags, groups and history come back;
#  - without a backup a new registration of "bob" is a new identity:
#    alice's send exits 5 (safety number changed).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

log "help lists the commands"
sc alice --help
grep -q "^  backup create" "$E2E_DIR/last.out" || fail "--help lacks backup create"
grep -q "^  register --restore FILE \[--code CODE\]" "$E2E_DIR/last.out" || fail "--help lacks restore"
sc alice backup create --help
assert_rc 0 "backup create --help"
assert_eq "$(head -n 1 "$E2E_DIR/last.out")" "usage: sotto --account NAME backup create FILE [--history]" \
    "backup create --help usage"
grep -q "^  8  not registered / not the primary device" "$E2E_DIR/last.out" || fail "backup exit 8"
sc alice backup crate x
assert_rc 2 "unknown backup subcommand"
grep -q "did you mean 'create'" "$E2E_DIR/last.err" || fail "no suggestion: $(cat "$E2E_DIR/last.err")"

server_start
for u in alice bob; do
    register "$u"
done

envelopes_for() { # USER DEVICE
    server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id
                WHERE a.username = '$1' AND e.device_id = $2"
}
safety() { # USER CONTACT -> $SN
    sc_ok "$1" --json safety-number "$2"
    SN=$(jfield safety_number <"$E2E_DIR/last.out")
    [[ "$SN" =~ ^[0-9]{60}$ ]] || fail "safety number is not 60 digits: [$SN]"
}

log "alice and bob talk; bob verifies alice and makes a group"
sc_ok alice send bob "hello bob"
receive_json bob "$E2E_DIR/b0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b0.json" "hello bob")" "1" "bob got it"
sc_ok bob send alice "hello alice"
receive_json alice "$E2E_DIR/a0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a0.json" "hello alice")" "1" "alice got it"
sc_ok bob trust alice
sc_ok bob --json group create team alice
gid=$(jfield id <"$E2E_DIR/last.out")
[[ "$gid" =~ ^[0-9a-f]{32}$ ]] || fail "group id: [$gid]"
receive_json alice "$E2E_DIR/a1.json"
safety alice bob
sn_alice_bob=$SN
safety bob alice
sn_bob_alice=$SN

log "bob links bob2"
sc bob2 --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request
assert_rc 0 "link-request"
code=$(jfield code <"$E2E_DIR/last.out")
sc_ok bob --json device-add "$code"
akey=$(jfield account_key <"$E2E_DIR/last.out")
sc_ok bob2 --json link-finish bob 2 "$akey"
sc_ok alice send bob "to both devices"
for d in bob bob2; do
    receive_json "$d" "$E2E_DIR/$d.1.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/$d.1.json" "to both devices")" "1" "$d got it"
done
receive_json alice "$E2E_DIR/a2.json" # alice hears "bob linked a new device"

log "only the primary makes a backup"
sc bob2 backup create "$E2E_DIR/bob2.backup"
assert_rc 8 "backup create on a linked device"
[ ! -e "$E2E_DIR/bob2.backup" ] || fail "a non-primary device wrote a backup"

log "bob makes a backup with history"
BK="$E2E_DIR/backup/bob.sotto-backup"
mkdir -p "$E2E_DIR/backup"
sc_ok bob --json backup create "$BK" --history
rcode=$(jfield recovery_code <"$E2E_DIR/last.out")
[[ "$rcode" =~ ^[0-9]{5}( [0-9]{5}){5}$ ]] || fail "recovery code is not 6 groups of 5 digits: [$rcode]"
assert_eq "$(jfield contacts <"$E2E_DIR/last.out")" "1" "contacts in the backup"
assert_eq "$(jfield groups <"$E2E_DIR/last.out")" "1" "groups in the backup"
hist=$(jfield history <"$E2E_DIR/last.out")
[ "$hist" -ge 3 ] || fail "history rows in the backup: $hist"
assert_eq "$(stat -c %a "$BK")" "600" "backup file mode"
assert_eq "$(find "$E2E_DIR/backup" -type f | wc -l)" "1" "files next to the backup (no temporary left)"
grep -q -a -F "hello bob" "$BK" && fail "the backup holds plaintext"
sc_ok bob backup create "$E2E_DIR/human.backup"
grep -q "WRITE THE RECOVERY CODE DOWN" "$E2E_DIR/last.out" || fail "no warning: $(cat "$E2E_DIR/last.out")"
grep -Eq '^recovery code: [0-9]{5}( [0-9]{5}){5}$' "$E2E_DIR/last.out" || fail "human code line"

log "something waits for the old devices when they are lost"
sc_ok alice send bob "queued for the lost devices"
assert_eq "$(envelopes_for bob 1)" "1" "queued for old device 1"
assert_eq "$(envelopes_for bob 2)" "1" "queued for old device 2"

log "all of bob's devices are lost (a copy is kept to try them later)"
cp -a "$E2E_DIR/home/bob" "$E2E_DIR/bob.copy"
cp -a "$E2E_DIR/home/bob2" "$E2E_DIR/bob2.copy"
rm -rf "$E2E_DIR/home/bob" "$E2E_DIR/home/bob2"

log "a wrong recovery code is refused and creates nothing"
wrong="00000 00000 00000 00000 00000 00000"
[ "$wrong" != "$rcode" ] || wrong="11111 11111 11111 11111 11111 11111"
echo "$wrong" >"$E2E_DIR/wrong.txt"
sc_in newbob "$E2E_DIR/wrong.txt" --json register --restore "$BK"
assert_rc 2 "restore with a wrong code (stdin)"
assert_eq "$(jfield code <"$E2E_DIR/last.out")" "wrong_recovery_code" "JSON error code"
[ ! -e "$E2E_DIR/home/newbob/sotto" ] || fail "a wrong code created $(find "$E2E_DIR/home/newbob")"
sc newbob register --restore "$BK" --code "12345"
assert_rc 2 "restore with a code that is not 30 digits"
[ ! -e "$E2E_DIR/home/newbob/sotto" ] || fail "a malformed code created something"
assert_eq "$(server_sql "SELECT device_list_version FROM accounts WHERE username = 'bob'")" "2" \
    "bob's list version on the server after the refused attempts"

log "bob restores on a new machine (no --server: it is in the backup)"
echo "$rcode" >"$E2E_DIR/code.txt"
sc_in newbob "$E2E_DIR/code.txt" --json register --restore "$BK"
assert_rc 0 "restore"
assert_eq "$(jfield username <"$E2E_DIR/last.out")" "bob" "restored username"
assert_eq "$(jfield device <"$E2E_DIR/last.out")" "1" "restored device id"
assert_eq "$(jfield list_version <"$E2E_DIR/last.out")" "3" "new device list version"
assert_eq "$(jfield recovered <"$E2E_DIR/last.out")" "true" "recovered"
[ "$(stat -c %a "$E2E_DIR/home/newbob/sotto/newbob/store.db")" = "600" ] || fail "store mode"
assert_eq "$(server_sql "SELECT device_list_version FROM accounts WHERE username = 'bob'")" "3" \
    "bob's list version on the server"
assert_eq "$(server_sql "SELECT group_concat(d.device_id) FROM devices d JOIN accounts a
                          ON a.id = d.account_id WHERE a.username = 'bob'")" "1" "bob's devices on the server"
log "what waited for the lost devices is gone with them"
assert_eq "$(envelopes_for bob 1)" "0" "envelopes for bob's device 1 after the restore"
assert_eq "$(envelopes_for bob 2)" "0" "envelopes for bob's device 2 after the restore"
sc newbob register --restore "$BK" --code "$rcode"
assert_rc 8 "a second restore into the restored account"

log "contacts, trust, groups and history came back"
sc_ok newbob --json contacts
assert_eq "$(jfield name <"$E2E_DIR/last.out")" "alice" "restored contact"
assert_eq "$(jfield verified <"$E2E_DIR/last.out")" "true" "restored verified flag"
sc_ok newbob --json group list
assert_eq "$(jfield id <"$E2E_DIR/last.out")" "$gid" "restored group"
assert_eq "$(jfield members <"$E2E_DIR/last.out")" '["alice", "bob"]' "restored members"
assert_eq "$(jfield admins <"$E2E_DIR/last.out")" '["bob"]' "restored admins (bob made the group)"
assert_eq "$(jfield revision <"$E2E_DIR/last.out")" "1" "restored group revision"
sc_ok newbob --json history alice
events message "$E2E_DIR/last.out" | jfield body | grep -x -- "hello bob" >/dev/null ||
    fail "restored history lacks 'hello bob': $(cat "$E2E_DIR/last.out")"
safety newbob alice
assert_eq "$SN" "$sn_bob_alice" "bob's safety number for alice after the restore"

log "alice: same safety number, a device-change notice, and her message reaches the restored device"
safety alice bob
assert_eq "$SN" "$sn_alice_bob" "alice's safety number for bob after the restore"
sc_ok alice send bob "after the restore"
assert_eq "$(envelopes_for bob 2)" "0" "envelopes queued for the lost device 2"
assert_eq "$(envelopes_for bob 1)" "1" "envelopes queued for the restored device 1"
receive_json alice "$E2E_DIR/a3.json"
codes=$(events notice "$E2E_DIR/a3.json" | jfield code | sort | tr '\n' ' ')
assert_eq "$codes" "device_changed device_removed " "alice's notices"
receive_json newbob "$E2E_DIR/n0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/n0.json" "after the restore")" "1" "the restored device got it"
assert_eq "$(count_message_bodies "$E2E_DIR/n0.json" "queued for the lost devices")" "0" \
    "the restored device got what was queued for the lost ones"
sc_ok newbob send alice "from the restored device"
receive_json alice "$E2E_DIR/a4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a4.json" "from the restored device")" "1" "alice got it"
sc_ok newbob group send team "team, I am back"
receive_json alice "$E2E_DIR/a5.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a5.json" "team, I am back")" "1" "group message"

log "the lost devices, found again, cannot log in"
cp -a "$E2E_DIR/bob.copy" "$E2E_DIR/home/bob"
cp -a "$E2E_DIR/bob2.copy" "$E2E_DIR/home/bob2"
for d in bob bob2; do
    sc "$d" receive
    case "$RC" in
    4 | 8) ;;
    *) fail "receive on the lost device $d: expected exit 4 or 8, got $RC: $(cat "$E2E_DIR/last.err")" ;;
    esac
done
sc_ok newbob --json devices
assert_eq "$(jfield device <"$E2E_DIR/last.out" | tr '\n' ' ')" "1 " "bob's devices"

log "without the backup, a new 'bob' is a new identity: alice is told (exit 5)"
"$SOTTOD" admin --data-dir "$SERVER_DATA" delete-account bob >"$E2E_DIR/admin.out" 2>&1 ||
    fail "delete-account bob: $(cat "$E2E_DIR/admin.out")"
sc otherbob --server "$SERVER_URL" --pin "$SERVER_FP" register bob
assert_rc 0 "a new registration of bob"
sc alice send bob "are you still you?"
assert_rc 5 "alice's send to a bob with a new account key"
grep -q -i "safety number" "$E2E_DIR/last.err" || fail "the refusal: $(cat "$E2E_DIR/last.err")"
safety alice bob
[ "$SN" != "$sn_alice_bob" ] || fail "the safety number did not change for a new identity"

log "the old backup cannot take the name from the new identity (exit 5, nothing kept)"
sc_in thirdbob "$E2E_DIR/code.txt" --json register --restore "$BK"
assert_rc 5 "restore over another account key"
grep -q "another account key" "$E2E_DIR/last.err" || fail "the refusal: $(cat "$E2E_DIR/last.err")"
# a failed register leaves no local account at all (issue 10)
[ -e "$E2E_DIR/home/thirdbob/sotto/thirdbob" ] &&
    fail "a refused restore left $(ls -A "$E2E_DIR/home/thirdbob/sotto/thirdbob")"

log "ok"
