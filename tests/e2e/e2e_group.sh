#!/usr/bin/env bash
# Groups (client-side fan-out over pairwise sessions): create, everyone
# talks, remove a member (who then reads nothing that follows, even after
# re-activating the group in its own store), add a member, rename, leave.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
for u in alice bob carol dave; do
    register "$u"
done

log "alice creates 'friends' with bob and carol"
sc_ok alice --json group create friends bob carol
gid=$(jfield id <"$E2E_DIR/last.out")
[[ "$gid" =~ ^[0-9a-f]{32}$ ]] || fail "group create printed no 32-hex id: $(cat "$E2E_DIR/last.out")"
assert_eq "$(jfield name <"$E2E_DIR/last.out")" "friends" "group name"
assert_eq "$(jfield members <"$E2E_DIR/last.out")" '["alice", "bob", "carol"]' "members at create"

for u in bob carol; do
    receive_json "$u" "$E2E_DIR/$u.create.json"
    events group "$E2E_DIR/$u.create.json" >"$E2E_DIR/$u.create.ev"
    assert_eq "$(wc -l <"$E2E_DIR/$u.create.ev")" "1" "$u: group events at create"
    assert_eq "$(jfield group.id <"$E2E_DIR/$u.create.ev")" "$gid" "$u: group id"
    assert_eq "$(jfield group.name <"$E2E_DIR/$u.create.ev")" "friends" "$u: group name"
    assert_eq "$(jfield members <"$E2E_DIR/$u.create.ev")" '["alice", "bob", "carol"]' "$u: members"
    assert_eq "$(jfield from <"$E2E_DIR/$u.create.ev")" "alice" "$u: who created the group"
done

log "all three talk"
sc_ok alice group send friends "alice to the group"
sc_ok bob group send "$gid" "bob to the group"
sc_ok carol group send friends "carol to the group"
for u in alice bob carol; do
    receive_json "$u" "$E2E_DIR/$u.talk.json"
    events message "$E2E_DIR/$u.talk.json" >"$E2E_DIR/$u.talk.msgs"
    assert_eq "$(wc -l <"$E2E_DIR/$u.talk.msgs")" "2" "$u: group messages received"
    assert_eq "$(jfield group.id <"$E2E_DIR/$u.talk.msgs" | sort -u)" "$gid" "$u: messages carry the group id"
    for v in alice bob carol; do
        [ "$u" = "$v" ] && continue
        assert_eq "$(count_message_bodies "$E2E_DIR/$u.talk.json" "$v to the group")" "1" "$u got $v's message"
        grep -F "\"body\":\"$v to the group\"" "$E2E_DIR/$u.talk.json" | grep "\"from\":\"$v\"" >/dev/null ||
            fail "$u: $v's message is not attributed to $v"
    done
done

log "alice removes carol"
sc_ok alice --json group remove friends carol
assert_eq "$(jfield members <"$E2E_DIR/last.out")" '["alice", "bob"]' "members after remove"
receive_json carol "$E2E_DIR/carol.rm.json"
events group "$E2E_DIR/carol.rm.json" >"$E2E_DIR/carol.rm.ev"
assert_eq "$(jfield action <"$E2E_DIR/carol.rm.ev" | tail -n 1)" "removed" "carol's group event"
sc_ok carol --json group list
assert_eq "$(jfield active <"$E2E_DIR/last.out")" "false" "carol's group is inactive"
receive_json bob "$E2E_DIR/bob.rm.json"
assert_eq "$(events group "$E2E_DIR/bob.rm.json" | jfield members | tail -n 1)" '["alice", "bob"]' \
    "bob's members after carol's removal"

log "what follows the removal does not reach carol"
sc_ok alice group send friends "after carol left: from alice"
sc_ok bob group send friends "after carol left: from bob"
receive_json carol "$E2E_DIR/carol.after.json"
assert_eq "$(events message "$E2E_DIR/carol.after.json" | wc -l)" "0" "messages carol received after removal"
grep -q -F "after carol left" "$E2E_DIR/carol.after.json" && fail "carol saw a message sent after her removal"
receive_json alice "$E2E_DIR/alice.after.json"
assert_eq "$(count_message_bodies "$E2E_DIR/alice.after.json" "after carol left: from bob")" "1" "alice got bob's"
receive_json bob "$E2E_DIR/bob.after.json"
assert_eq "$(count_message_bodies "$E2E_DIR/bob.after.json" "after carol left: from alice")" "1" "bob got alice's"

log "carol can no longer send to the group (exit 8)"
sc carol group send friends "carol tries anyway"
assert_rc 8 "removed member sends to the group"

log "carol re-activates the group in her own store and sends: alice and bob ignore it"
carol_db=$(find "$E2E_DIR/home/carol" -name store.db | head -n 1)
[ -n "$carol_db" ] || fail "carol's store.db not found"
sqlite3 "$carol_db" "UPDATE client_groups SET active = 1;
  INSERT OR IGNORE INTO client_group_members(group_id, member) SELECT id, 'carol' FROM client_groups;
  INSERT OR IGNORE INTO client_group_members(group_id, member) SELECT id, 'alice' FROM client_groups;
  INSERT OR IGNORE INTO client_group_members(group_id, member) SELECT id, 'bob' FROM client_groups;"
sc carol group send friends "forged: carol is still here"
for u in alice bob; do
    receive_json "$u" "$E2E_DIR/$u.forged.json"
    assert_eq "$(count_message_bodies "$E2E_DIR/$u.forged.json" "forged: carol is still here")" "0" \
        "$u shows a group message from a removed member"
done
sc_ok alice --json group list
assert_eq "$(jfield members <"$E2E_DIR/last.out")" '["alice", "bob"]' "alice's members unchanged"

log "alice adds dave; dave reads what follows, not what came before"
sc_ok alice --json group add friends dave
assert_eq "$(jfield members <"$E2E_DIR/last.out")" '["alice", "bob", "dave"]' "members after add"
sc_ok alice group send friends "welcome dave"
receive_json dave "$E2E_DIR/dave.json"
assert_eq "$(events group "$E2E_DIR/dave.json" | jfield members | tail -n 1)" '["alice", "bob", "dave"]' \
    "dave's member list"
assert_eq "$(count_message_bodies "$E2E_DIR/dave.json" "welcome dave")" "1" "dave got the welcome"
assert_eq "$(events message "$E2E_DIR/dave.json" | wc -l)" "1" "dave got no older messages"
receive_json bob "$E2E_DIR/bob.add.json"
assert_eq "$(count_message_bodies "$E2E_DIR/bob.add.json" "welcome dave")" "1" "bob got the welcome"
sc_ok dave group send friends "dave says hi"
receive_json bob "$E2E_DIR/bob.dave.json"
assert_eq "$(count_message_bodies "$E2E_DIR/bob.dave.json" "dave says hi")" "1" "bob got dave's message"

log "bob, not an admin, may not rename; alice makes him one; bob renames; then bob leaves"
sc bob group rename friends "best friends"
assert_rc 8 "rename by a member who is not an admin"
sc_ok alice group admin add friends bob
receive_json bob "$E2E_DIR/bob.admin.json"
sc_ok bob group rename friends "best friends"
receive_json alice "$E2E_DIR/alice.ren.json"
assert_eq "$(events group "$E2E_DIR/alice.ren.json" | jfield group.name | tail -n 1)" "best friends" \
    "alice sees the new name"
sc_ok bob group leave "best friends"
receive_json alice "$E2E_DIR/alice.leave.json"
assert_eq "$(events group "$E2E_DIR/alice.leave.json" | jfield members | tail -n 1)" '["alice", "dave"]' \
    "alice's members after bob left"
sc_ok alice group send "best friends" "bob is gone"
receive_json bob "$E2E_DIR/bob.gone.json"
assert_eq "$(count_message_bodies "$E2E_DIR/bob.gone.json" "bob is gone")" "0" "bob reads after leaving"
receive_json dave "$E2E_DIR/dave.gone.json"
assert_eq "$(count_message_bodies "$E2E_DIR/dave.gone.json" "bob is gone")" "1" "dave got it"

log "ok"
