#!/usr/bin/env bash
# Groups never lose a change silently (issue 10, docs/protocol.md "Groups"):
#  1. the group-add interruption: alice adds bob and carol, carol's safety
#     number has changed. The change is made, bob gets it, carol's copy stays
#     queued (exit 5, per-member status); a group message sent meanwhile is
#     queued for carol too (not "sent"); after `trust carol` carol gets the
#     update, then the message.
#  2. a missed update heals: bob's copy of a rename is deleted on the server;
#     alice's next group message carries the higher revision, bob asks alice
#     for the state and gets it.
#  3. a rename by a member who is not an admin is refused by the others.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
for u in alice bob carol dave; do
    register "$u"
done

# group_field USER GROUP FIELD: FIELD of GROUP (by name) in USER's group list
group_field() {
    sc_ok "$1" --json group list
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    g = json.loads(line)
    if g.get("name") == sys.argv[2] or g.get("id") == sys.argv[2]:
        v = g.get(sys.argv[3])
        print(json.dumps(v) if not isinstance(v, str) else v)
' "$E2E_DIR/last.out" "$2" "$3"
}

# delivery FILE MEMBER: "status reason" of MEMBER in the delivery array of
# the JSON object in FILE
delivery() {
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    o = json.loads(line)
    for d in o.get("delivery", []):
        if d["member"] == sys.argv[2]:
            print(d["status"], d["reason"])
' "$1" "$2"
}

log "1. alice knows carol; then carol's account is replaced (new keys)"
sc_ok alice send carol "hello old carol"
receive_json carol "$E2E_DIR/c0.json"
sc_ok alice group create "team"
"$SOTTOD" admin --data-dir "$SERVER_DATA" delete-account carol >"$E2E_DIR/admin.out" 2>&1 ||
    fail "delete-account carol: $(cat "$E2E_DIR/admin.out")"
mv "$E2E_DIR/home/carol" "$E2E_DIR/home/carol.old"
register carol

log "alice adds bob and carol: made, bob sent, carol queued (exit 5)"
sc alice --json group add team bob carol
assert_rc 5 "group add with carol's safety number changed"
cp "$E2E_DIR/last.out" "$E2E_DIR/add.json"
gid=$(jfield id <"$E2E_DIR/add.json")
[[ "$gid" =~ ^[0-9a-f]{32}$ ]] || fail "group add printed no group: $(cat "$E2E_DIR/add.json")"
assert_eq "$(delivery "$E2E_DIR/add.json" bob | cut -d' ' -f1)" "sent" "bob's status"
carol_st=$(delivery "$E2E_DIR/add.json" carol)
assert_eq "${carol_st%% *}" "queued" "carol's status"
grep -q "safety number" <<<"$carol_st" || fail "carol's reason: [$carol_st]"
grep -q "trust carol" "$E2E_DIR/last.err" || fail "no hint to trust: $(cat "$E2E_DIR/last.err")"
assert_eq "$(group_field alice team members)" '["alice", "bob", "carol"]' "alice's members"
sc alice group add team bob carol
assert_rc 5 "text mode: same change again"
grep -q "carol: queued" "$E2E_DIR/last.out" || fail "text report: $(cat "$E2E_DIR/last.out")"

receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(events group "$E2E_DIR/b1.json" | wc -l | tr -d ' ')" "2" "bob got the group (and the repeated add)"
receive_json carol "$E2E_DIR/c1.json"
assert_eq "$(events group "$E2E_DIR/c1.json" | wc -l | tr -d ' ')" "0" "carol before trust"

log "a group message meanwhile: bob gets it, carol's copy is queued, not 'sent'"
sc alice --json group send team "while carol waits"
assert_rc 5 "group send with carol's update queued"
cp "$E2E_DIR/last.out" "$E2E_DIR/send.json"
assert_eq "$(jfield type <"$E2E_DIR/send.json" | head -1)" "partly_sent" "send result type"
assert_eq "$(delivery "$E2E_DIR/send.json" carol | cut -d' ' -f1)" "queued" "carol's message status"
assert_eq "$(delivery "$E2E_DIR/send.json" bob | cut -d' ' -f1)" "sent" "bob's message status"
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b2.json" "while carol waits")" "1" "bob got the message"

log "alice trusts carol: carol gets the update, then the message"
sc_ok alice trust carol
receive_json carol "$E2E_DIR/c2.json"
python3 - "$E2E_DIR/c2.json" <<'PY' || fail "carol's events after trust: $(cat "$E2E_DIR/c2.json")"
import json, sys
kinds = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line:
        ev = json.loads(line)
        k = ev.get("type", ev.get("kind"))
        if k == "group" or (k == "message" and ev.get("body") == "while carol waits"):
            kinds.append(k)
assert kinds == ["group", "group", "message"], kinds  # create, the repeated add, then the message
PY
assert_eq "$(group_field carol team members)" '["alice", "bob", "carol"]' "carol's members"
assert_eq "$(group_field carol team revision)" "$(group_field alice team revision)" "carol's revision"

log "2. a missed update heals"
sc_ok alice --json group create "heal" bob dave
hid=$(jfield id <"$E2E_DIR/last.out")
receive_json bob "$E2E_DIR/b3.json"
receive_json dave "$E2E_DIR/d3.json"
assert_eq "$(group_field bob "$hid" revision)" "1" "bob's revision after create"
sc_ok alice group rename "$hid" "healed"
# the operator (or a lost envelope) drops bob's copy; a restart so that
# nothing of it is left in the server's memory either
bob_id=$(server_sql "SELECT id FROM accounts WHERE username = 'bob'")
[ -n "$bob_id" ] || fail "no account id for bob"
assert_eq "$(server_sql "SELECT count(*) FROM envelopes WHERE account_id = $bob_id")" "1" \
    "bob's queued envelopes (the rename)"
server_sql "DELETE FROM envelopes WHERE account_id = $bob_id;
    UPDATE devices SET queue_depth = 0 WHERE account_id = $bob_id"
server_restart
receive_json bob "$E2E_DIR/b4.json"
assert_eq "$(group_field bob "$hid" name)" "heal" "bob missed the rename"
assert_eq "$(group_field bob "$hid" revision)" "1" "bob's revision after the loss"
sc_ok alice group send "$hid" "after the rename"
receive_json bob "$E2E_DIR/b5.json" # the message (revision 2 > 1): bob asks alice
assert_eq "$(count_message_bodies "$E2E_DIR/b5.json" "after the rename")" "1" "bob got the message"
receive_json alice "$E2E_DIR/a5.json" # alice answers with the state
receive_json bob "$E2E_DIR/b6.json"
assert_eq "$(group_field bob "$hid" name)" "healed" "bob's name after healing"
assert_eq "$(group_field bob "$hid" revision)" "2" "bob's revision after healing"
assert_eq "$(group_field bob "$hid" admins)" '["alice"]' "bob's admins"

log "3. a non-admin's rename is refused by the others"
sc bob group rename "$hid" "bob's group"
assert_rc 8 "bob (not an admin) renames"
# a modified client that believes bob is an admin sends the rename anyway
sqlite3 -batch "$E2E_DIR/home/bob/sotto/bob/store.db" \
    "UPDATE client_group_members SET admin = 1 WHERE member = 'bob'"
sc_ok bob group rename "$hid" "bob's group"
receive_json alice "$E2E_DIR/a7.json"
receive_json dave "$E2E_DIR/d7.json"
assert_eq "$(group_field alice "$hid" name)" "healed" "alice's name after bob's rename"
assert_eq "$(group_field dave "$hid" name)" "healed" "dave's name after bob's rename"
assert_eq "$(events notice "$E2E_DIR/a7.json" | grep -c group_not_admin)" "1" "alice's notice"

log "ok"
