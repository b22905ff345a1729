#!/usr/bin/env bash
# Linked devices get everything (issue 10): when alice links a laptop, her
# primary sends it, end-to-end encrypted to that device only
# (SyncMessage.link_sync, docs/protocol.md "Content"), her contacts with
# their pinned account keys and trust decisions, her groups and the last
# 30 days of history:
#  - the laptop shows the contacts (bob verified, carol not) with the same
#    safety numbers and no trust prompt, the group, the history (count and
#    bodies) and one notice "synced from device 1: ...";
#  - `group send` from the laptop reaches bob and carol, and the phone sees
#    it as sent; bob's group message reaches the laptop; group updates made
#    on either device reach the other;
#  - the sync sent again changes nothing (no row, no notice);
#  - `device-add --history-days 0` sends no history;
#  - a sync from a device NOT in alice's signed list (the operator moves
#    mallory's device into alice's account) is not applied.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
for u in alice bob carol mallory; do
    register "$u"
done

link() { # HOME [device-add options...]: links a new device of alice living in HOME; id in $DEV
    local home=$1
    shift
    sc "$home" --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request
    assert_rc 0 "link-request ($home)"
    local code akey
    code=$(jfield code <"$E2E_DIR/last.out")
    sc_ok alice --json device-add "$@" "$code"
    DEV=$(jfield device <"$E2E_DIR/last.out")
    akey=$(jfield account_key <"$E2E_DIR/last.out")
    sc_ok "$home" --json link-finish alice "$DEV" "$akey"
}
safety() { # USER CONTACT -> stdout
    sc_ok "$1" --json safety-number --no-qr "$2"
    jfield safety_number <"$E2E_DIR/last.out"
}
history_bodies() { # USER ARGS... : the bodies of text rows in `history ARGS`, one per line
    sc_ok "$1" --json history "${@:2}"
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    ev = json.loads(line)
    if ev.get("type") in ("message", "outgoing"):
        print(ev.get("body"))
' "$E2E_DIR/last.out"
}
notice_bodies() { # FILE CODE: the bodies of notices with CODE
    events notice "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    ev = json.loads(line)
    if ev.get("code") == sys.argv[1]:
        print(ev.get("body"))
' "$2"
}
group_field() { # USER FIELD: FIELD of USER's groups (one line per group)
    sc_ok "$1" --json group list
    jfield "$2" <"$E2E_DIR/last.out"
}

log "alice's phone: contacts bob (verified) and carol, a group with both, history"
sc_ok bob send alice "hi alice, bob here"
sc_ok carol send alice "hi alice, carol here"
receive_json alice "$E2E_DIR/a0.json"
sc_ok alice trust bob
sc_ok alice --json group create friends bob carol
gid=$(jfield id <"$E2E_DIR/last.out")
sc_ok alice group send friends "m1 from alice"
receive_json bob "$E2E_DIR/b0.json"
sc_ok bob group send friends "m2 from bob"
receive_json carol "$E2E_DIR/c0.json"
sc_ok carol group send friends "m3 from carol"
sc_ok alice send bob "one to one for bob"
receive_json alice "$E2E_DIR/a1.json"
receive_json bob "$E2E_DIR/b1.json"
sn_bob=$(safety alice bob)
sn_carol=$(safety alice carol)
[[ "$sn_bob" =~ ^[0-9]{60}$ ]] || fail "no safety number for bob: [$sn_bob]"
assert_eq "$(history_bodies alice --group friends | tr '\n' '|')" "m1 from alice|m2 from bob|m3 from carol|" \
    "alice's group history"

log "alice links her laptop; her phone sends it everything at its next connection"
# a setting of the account's (issue 11) that the laptop must take over
sc_ok alice config read-receipts off
link laptop
assert_eq "$DEV" "2" "the laptop's device id"
receive_json alice "$E2E_DIR/a2.json"
receive_json laptop "$E2E_DIR/l0.json"
assert_eq "$(notice_bodies "$E2E_DIR/l0.json" device_synced)" \
    "synced from device 1: 2 contacts, 1 group, 6 messages" "the laptop's sync notice"
sc_ok laptop --json contacts
cp "$E2E_DIR/last.out" "$E2E_DIR/l.contacts"
assert_eq "$(jfield name <"$E2E_DIR/l.contacts" | tr '\n' ' ')" "bob carol " "the laptop's contacts"
assert_eq "$(jfield verified <"$E2E_DIR/l.contacts" | tr '\n' ' ')" "true false " \
    "the laptop's trust decisions (bob verified)"
assert_eq "$(jfield identity_changed <"$E2E_DIR/l.contacts" | tr '\n' ' ')" "false false " \
    "a trust prompt on the laptop"
laptop_db="$E2E_DIR/home/laptop/sotto/laptop/store.db"
[ -f "$laptop_db" ] || fail "no laptop store at $laptop_db"
for u in bob carol; do
    assert_eq "$(sqlite3 "$laptop_db" "SELECT hex(account_key) FROM client_accounts WHERE name = '$u'")" \
        "$(sqlite3 "$E2E_DIR/home/alice/sotto/alice/store.db" "SELECT hex(account_key) FROM client_accounts WHERE name = '$u'")" \
        "$u's account key pinned on the laptop (from the sync)"
done
sc_ok laptop --json config
assert_eq "$(jfield read_receipts <"$E2E_DIR/last.out")" "false" "the laptop took read-receipts off"
assert_eq "$(jfield typing_indicators <"$E2E_DIR/last.out")" "true" "the laptop's typing setting"
assert_eq "$(safety laptop bob)" "$sn_bob" "the laptop's safety number for bob"
assert_eq "$(safety laptop carol)" "$sn_carol" "the laptop's safety number for carol"
assert_eq "$(group_field laptop name)" "friends" "the laptop's group"
assert_eq "$(group_field laptop id)" "$gid" "the laptop's group id"
assert_eq "$(group_field laptop members)" '["alice", "bob", "carol"]' "the laptop's group members"
assert_eq "$(group_field laptop active)" "true" "the laptop's group is active"
assert_eq "$(group_field laptop revision)" "$(group_field alice revision)" "the laptop's group revision"
assert_eq "$(group_field laptop admins)" "$(group_field alice admins)" "the laptop's group admins"
assert_eq "$(group_field laptop open)" "$(group_field alice open)" "the laptop's group open flag"
assert_eq "$(history_bodies laptop --group friends | tr '\n' '|')" "m1 from alice|m2 from bob|m3 from carol|" \
    "the laptop's group history"
assert_eq "$(history_bodies laptop bob | tr '\n' '|')" "hi alice, bob here|one to one for bob|" \
    "the laptop's history with bob"
laptop_rows=$(sqlite3 "$laptop_db" "SELECT count(*) FROM client_messages")

log "group send from the laptop reaches bob and carol; the phone sees it as sent"
sc_ok laptop group send friends "m4 from the laptop"
for u in bob carol; do
    receive_json "$u" "$E2E_DIR/$u.l.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/$u.l.json" "m4 from the laptop")" "1" "$u got the laptop's group message"
done
receive_json alice "$E2E_DIR/a3.json"
assert_eq "$(events outgoing "$E2E_DIR/a3.json" | jfield body)" "m4 from the laptop" "the phone's sync transcript"
assert_eq "$(events outgoing "$E2E_DIR/a3.json" | jfield group.id)" "$gid" "the transcript's group"

log "bob's group message reaches the laptop (and the phone)"
sc_ok bob group send friends "m5 from bob"
receive_json laptop "$E2E_DIR/l1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/l1.json" "m5 from bob")" "1" "the laptop got bob's group message"
receive_json alice "$E2E_DIR/a4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a4.json" "m5 from bob")" "1" "the phone got bob's group message"

log "group updates on one device reach the other"
sc_ok alice group rename friends "best friends"
receive_json laptop "$E2E_DIR/l2.json"
assert_eq "$(group_field laptop name)" "best friends" "the laptop sees the phone's rename"
sc_ok laptop --json group create "laptop made" bob
gid2=$(jfield id <"$E2E_DIR/last.out")
sc_ok laptop group remove "best friends" carol
receive_json alice "$E2E_DIR/a5.json"
sc_ok alice --json group list
grep -F "\"$gid2\"" "$E2E_DIR/last.out" | grep -q '"laptop made"' ||
    fail "the phone does not know the group the laptop created: $(cat "$E2E_DIR/last.out")"
grep -F "\"$gid\"" "$E2E_DIR/last.out" | grep -q '"members":\["alice","bob"\]\|"members": \["alice", "bob"\]' ||
    fail "the phone did not see the laptop remove carol: $(cat "$E2E_DIR/last.out")"
sc_ok laptop group leave "laptop made"
receive_json alice "$E2E_DIR/a6.json"
sc_ok alice --json group list
grep -F "\"$gid2\"" "$E2E_DIR/last.out" | grep -q '"active":false\|"active": false' ||
    fail "the phone did not see the laptop leave: $(cat "$E2E_DIR/last.out")"
sc_ok alice group add "best friends" carol
receive_json laptop "$E2E_DIR/l2b.json"
sc_ok laptop --json group list
grep -F "\"$gid\"" "$E2E_DIR/last.out" | grep -q '"members":\["alice","bob","carol"\]\|"members": \["alice", "bob", "carol"\]' ||
    fail "the laptop did not see the phone add carol back: $(cat "$E2E_DIR/last.out")"
receive_json bob "$E2E_DIR/b2.json"
receive_json carol "$E2E_DIR/c2.json"

log "the sync sent again changes nothing"
laptop_rows=$(sqlite3 "$laptop_db" "SELECT count(*) FROM client_messages")
laptop_groups=$(sqlite3 "$laptop_db" "SELECT count(*) FROM client_groups")
sc_ok alice --json device-sync 2
assert_eq "$(jfield parts <"$E2E_DIR/last.out")" "1" "parts of the second sync"
receive_json laptop "$E2E_DIR/l3.json"
assert_eq "$(notice_bodies "$E2E_DIR/l3.json" device_synced)" "" "a notice for a sync that changed nothing"
assert_eq "$(sqlite3 "$laptop_db" "SELECT count(*) FROM client_messages")" "$laptop_rows" "the laptop's history rows"
assert_eq "$(sqlite3 "$laptop_db" "SELECT count(*) FROM client_groups")" "$laptop_groups" "the laptop's groups"
assert_eq "$(group_field laptop name | sort | tr '\n' '|')" "best friends|laptop made|" \
    "the laptop's groups after the second sync (its own newer copy kept)"

log "device-add --history-days 0 sends no history"
# three texts near the 64 KiB limit: a full sync needs several parts
for i in 1 2 3; do
    python3 -c 'import sys; sys.stdout.write(("big %s " % sys.argv[1]) * 10000)' "$i" >"$E2E_DIR/big$i.txt"
    sc_in bob "$E2E_DIR/big$i.txt" send alice
    assert_rc 0 "bob sends big text $i"
done
receive_json alice "$E2E_DIR/a7a.json"
link tablet --history-days 0
assert_eq "$DEV" "3" "the tablet's device id"
# before the sync arrives the tablet has pinned another key for carol
# itself (here: mallory's account key, written into its store): its own
# pin wins, and it says so
tablet_db="$E2E_DIR/home/tablet/sotto/tablet/store.db"
mallory_key=$(sqlite3 "$E2E_DIR/home/mallory/sotto/mallory/store.db" \
    "SELECT hex(value) FROM client_config WHERE key = 'account_pk'")
[[ "$mallory_key" =~ ^05[0-9A-F]{64}$ ]] || fail "mallory's account key: [$mallory_key]"
sqlite3 "$tablet_db" "INSERT INTO client_accounts(name, account_key, pinned_ms) VALUES('carol', X'$mallory_key', 1)"
receive_json alice "$E2E_DIR/a7.json"
receive_json tablet "$E2E_DIR/t0.json"
assert_eq "$(notice_bodies "$E2E_DIR/t0.json" device_synced)" \
    "synced from device 1: 2 contacts, 2 groups, 0 messages" "the tablet's sync notice"
notice_bodies "$E2E_DIR/t0.json" device_sync_conflict | grep -q "another account key for carol than the one this device pinned" ||
    fail "the tablet did not say its own pin for carol differs: $(cat "$E2E_DIR/t0.json")"
assert_eq "$(sqlite3 "$tablet_db" "SELECT hex(account_key) FROM client_accounts WHERE name = 'carol'")" \
    "$mallory_key" "the tablet's own pin for carol after the sync"
assert_eq "$(sqlite3 "$tablet_db" "SELECT hex(account_key) FROM client_accounts WHERE name = 'bob'")" \
    "$(sqlite3 "$E2E_DIR/home/alice/sotto/alice/store.db" "SELECT hex(account_key) FROM client_accounts WHERE name = 'bob'")" \
    "bob's key on the tablet (from the sync)"
sc_ok tablet --json contacts
assert_eq "$(jfield verified <"$E2E_DIR/last.out" | tr '\n' ' ')" "true false " \
    "the tablet's verified flags (carol's differing key is not verified)"
assert_eq "$(sqlite3 "$tablet_db" "SELECT count(*) FROM client_messages WHERE kind <> 'notice'")" "0" \
    "history rows on the tablet"
log "device-sync --history-days 30: the history in several parts, each under the ciphertext cap"
alice_db="$E2E_DIR/home/alice/sotto/alice/store.db"
texts=$(sqlite3 "$alice_db" "SELECT count(*) FROM client_messages WHERE kind = 'text'")
sc_ok alice --json device-sync --history-days 30 3
parts=$(jfield parts <"$E2E_DIR/last.out")
[ "$parts" -ge 3 ] || fail "a sync of three 64 KiB texts in $parts part(s)"
receive_json tablet "$E2E_DIR/t1.json"
assert_eq "$(notice_bodies "$E2E_DIR/t1.json" device_synced)" \
    "synced from device 1: 0 contacts, 0 groups, $texts messages" "the tablet's notice after the full sync"
for i in 1 2 3; do
    assert_eq "$(sqlite3 "$tablet_db" "SELECT count(*) FROM client_messages WHERE body = CAST(readfile('$E2E_DIR/big$i.txt') AS TEXT)")" \
        "1" "big text $i on the tablet, byte for byte"
done
assert_eq "$(sqlite3 "$tablet_db" "SELECT count(*) FROM client_messages WHERE kind = 'text'")" "$texts" \
    "text rows on the tablet"

log "device-sync to a device not in the list (exit 6), or not linked yet (exit 8)"
sc alice device-sync 9
assert_rc 6 "device-sync to a device id the list does not hold"
sc pending --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request
assert_rc 0 "link-request (pending)"
sc_ok alice --json device-add "$(jfield code <"$E2E_DIR/last.out")"
assert_eq "$(jfield device <"$E2E_DIR/last.out")" "4" "the unfinished device's id"
sc alice device-sync 4
assert_rc 8 "device-sync to a device that has not run link-finish"
grep -q "no keys on the server yet" "$E2E_DIR/last.err" ||
    fail "device-sync does not say the device has not finished linking: $(cat "$E2E_DIR/last.err")"

log "a sync from a device not in alice's signed list is not applied"
sc_ok mallory --json group create "mallory's trap" bob carol
sc_ok mallory --json safety-number --no-qr alice # pins alice's account key, sends nothing
server_stop_ok
acct() { printf "(SELECT id FROM accounts WHERE username = '%s')" "$1"; }
server_sql "
  UPDATE one_time_prekeys SET account_id = $(acct alice), device_id = 7
    WHERE account_id = $(acct mallory) AND device_id = 1;
  UPDATE devices SET account_id = $(acct alice), device_id = 7
    WHERE account_id = $(acct mallory) AND device_id = 1;"
server_restart
mstore="$E2E_DIR/home/mallory/sotto/mallory/store.db"
sqlite3 -batch "$mstore" "UPDATE client_config SET value = 'alice' WHERE key = 'username';
                          UPDATE client_config SET value = 7 WHERE key = 'device_id';"
sc_ok mallory --json device-sync 2
assert_eq "$(jfield groups <"$E2E_DIR/last.out")" "1" "groups in the planted device's sync"
receive_json laptop "$E2E_DIR/l4.json"
assert_eq "$(notice_bodies "$E2E_DIR/l4.json" device_synced)" "" "a sync notice from the planted device"
sc_ok laptop --json group list
grep -q "mallory's trap" "$E2E_DIR/last.out" && fail "the laptop took a group from the planted device"
assert_eq "$(sqlite3 "$laptop_db" "SELECT count(*) FROM client_groups")" "$laptop_groups" \
    "the laptop's groups after the planted device's sync"
assert_eq "$(sqlite3 "$laptop_db" "SELECT count(*) FROM client_contacts WHERE name = 'mallory'")" "0" \
    "mallory as a contact on the laptop"
events notice "$E2E_DIR/l4.json" | jfield code | grep -x -- unlisted_device >/dev/null ||
    fail "the laptop was not told about the unlisted device: $(cat "$E2E_DIR/l4.json")"
log "ok"
