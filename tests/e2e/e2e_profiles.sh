#!/usr/bin/env bash
# Profiles (issue 11): alice sets a display name and an avatar; bob, whom
# alice writes, gets her profile key and shows "alice (Alice ...)" in
# receive, contacts and profile show; carol, a stranger alice never
# accepted, gets no key until alice accepts and answers; the server's files
# (database, WAL, logs) never hold the name or the avatar; a profile the
# server swapped or damaged is refused with exit 7 and nothing is shown.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register_all alice bob carol

NAME='Alice Liddell ✓ profilename'
AVATAR_MARK='AVATARPLAINTEXTMARK'

log "alice sets her profile (name + avatar)"
python3 -c "import sys; sys.stdout.write('$AVATAR_MARK' * 100)" >"$E2E_DIR/avatar.png"
sc_ok alice --json profile set --name "$NAME" --avatar "$E2E_DIR/avatar.png"
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "$NAME" "profile set --json name"
assert_eq "$(jfield avatar_type <"$E2E_DIR/last.out")" "image/png" "avatar type from the extension"
sc_ok alice --json profile show
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "$NAME" "own profile show"

log "bad input is refused before anything is sent"
sc alice profile set --name ""
assert_rc 2 "empty name"
sc alice profile set --name "$(printf 'a\033[2Jb')"
assert_rc 2 "a name with a control character"
sc alice profile set --name "$(python3 -c "print('x' * 129)")"
assert_rc 2 "a name over 128 bytes"
head -c $((96 * 1024 + 1)) /dev/zero >"$E2E_DIR/big.png"
sc alice profile set --name "$NAME" --avatar "$E2E_DIR/big.png"
assert_rc 2 "an avatar over 96 KiB"

log "bob has no key for alice yet"
sc bob profile show alice
assert_rc 6 "profile show before alice wrote"

log "alice writes bob: bob sees her display name"
sc_ok alice send bob "hello bob"
receive_json bob "$E2E_DIR/bob1.json"
events message "$E2E_DIR/bob1.json" >"$E2E_DIR/bob1.msgs"
assert_eq "$(jfield body <"$E2E_DIR/bob1.msgs")" "hello bob" "bob got the message"
assert_eq "$(jfield display_name <"$E2E_DIR/bob1.msgs")" "$NAME" "display name in receive --json"
assert_eq "$(jfield from <"$E2E_DIR/bob1.msgs")" "alice" "the sender is still the username"
sc_ok bob --json contacts
assert_eq "$(grep '"name":"alice"' "$E2E_DIR/last.out" | jfield profile_name)" "$NAME" \
    "contacts --json profile_name"
sc_ok bob contacts
grep -q "^alice (Alice Liddell" "$E2E_DIR/last.out" || fail "contacts text: $(cat "$E2E_DIR/last.out")"
sc_ok alice send bob "second"
sc_ok bob receive
grep -q "alice (Alice Liddell ✓ profilename)\( \[request\]\)\?: second" "$E2E_DIR/last.out" ||
    fail "receive text shows 'alice (NAME)': $(cat "$E2E_DIR/last.out")"
sc_ok bob --json profile show alice
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "$NAME" "bob: profile show alice"
avatar=$(jfield avatar <"$E2E_DIR/last.out")
[ -f "$avatar" ] || fail "bob's copy of the avatar: $avatar"
cmp -s "$avatar" "$E2E_DIR/avatar.png" || fail "the avatar differs from alice's file"
assert_eq "$(stat -c %a "$avatar")" "600" "avatar file mode"

log "carol, a stranger: her message is a request; alice's key does not reach her"
sc_ok carol send alice "hi, I am carol"
receive_json alice "$E2E_DIR/alice1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/alice1.json" "hi, I am carol")" "1" "alice got carol's"
receive_json carol "$E2E_DIR/carol1.json"
sc carol profile show alice
assert_rc 6 "carol has no key for alice"
carol_db=$(find "$E2E_DIR/home/carol" -name store.db | head -n 1)
assert_eq "$(sqlite3 -batch "$carol_db" "SELECT count(*) FROM client_profiles WHERE profile_key IS NOT NULL")" \
    "0" "carol's store holds no profile key"

log "alice accepts and answers: now carol gets the key and the name"
sc_ok alice accept carol
sc_ok alice send carol "welcome"
receive_json carol "$E2E_DIR/carol2.json"
events message "$E2E_DIR/carol2.json" >"$E2E_DIR/carol2.msgs"
assert_eq "$(jfield display_name <"$E2E_DIR/carol2.msgs")" "$NAME" "carol sees the name after accept"

log "the server's files and logs never hold the name or the avatar"
assert_eq "$(scan_server "Alice Liddell" "profilename" "$AVATAR_MARK")" "0" "server data directory"
for f in "$E2E_DIR/server.out" "$E2E_DIR/server.err"; do
    if grep -a -q -e "Alice Liddell" -e "profilename" -e "$AVATAR_MARK" "$f"; then
        fail "the name is in $f"
    fi
done
assert_eq "$(server_sql "SELECT count(*) FROM profiles")" "1" "one profile (alice's) stored"

log "a profile the server swaps (carol's ciphertext as alice's) is refused"
sc_ok carol profile set --name "Carol C"
server_sql "UPDATE profiles SET ciphertext = (SELECT p.ciphertext FROM profiles p JOIN accounts a
            ON a.id = p.account_id WHERE a.username = 'carol')
            WHERE account_id = (SELECT id FROM accounts WHERE username = 'alice')"
sc bob --json profile show alice
assert_rc 7 "swapped profile: exit 7"
grep -q "does not decrypt" "$E2E_DIR/last.err" || fail "clear error: $(cat "$E2E_DIR/last.err")"
if grep -q "Carol C\|$NAME" "$E2E_DIR/last.out"; then fail "a refused profile was shown"; fi
sc_ok bob --json contacts
assert_eq "$(grep '"name":"alice"' "$E2E_DIR/last.out" | jfield profile_name)" "" \
    "nothing kept from a refused profile"

log "damaged bytes are refused too; alice's next upload repairs it"
server_sql "UPDATE profiles SET ciphertext = randomblob(700)
            WHERE account_id = (SELECT id FROM accounts WHERE username = 'alice')"
sc bob profile show alice
assert_rc 7 "random ciphertext: exit 7"
sc_ok alice profile set --name "$NAME"
sc_ok bob --json profile show alice
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "$NAME" "after a fresh upload"
assert_eq "$(jfield avatar <"$E2E_DIR/last.out")" "" "the avatar was removed by the new profile"

log "bob links a laptop: it gets alice's profile key and bob's own key and name"
sc_ok bob profile set --name "Bob Before Link"
link_device bob laptop
receive_json bob "$E2E_DIR/b-link.json"
receive_json laptop "$E2E_DIR/l-link.json"
sc_ok laptop --json profile show
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "Bob Before Link" "the laptop knows bob's name"
sc_ok laptop --json profile show alice
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "$NAME" \
    "the laptop opens alice's profile with the synced key"
log "bob changes his name on the phone: the laptop follows (sync message)"
sc_ok bob profile set --name "Bob Renamed"
receive_json laptop "$E2E_DIR/l-sync.json"
sc_ok laptop --json profile show
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "Bob Renamed" "profile sync to own devices"

log "through the daemon: updateProfile, getProfile, listContacts profile_name"
HERE=$(cd "$(dirname "$0")" && pwd)
daemon_start bob
SOCK="$SOCK" NAME="$NAME" python3 - "$HERE" <<'PY' ||
import os, sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc
r = Rpc(os.environ["SOCK"])
def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)
m = r.call("updateProfile", {"account": "bob", "givenName": "Bob", "familyName": "Builder"})
check(m.get("result", {}).get("display_name") == "Bob Builder", "updateProfile: %r" % m)
m = r.call("getProfile", {"account": "bob", "recipient": "alice"})
check(m.get("result", {}).get("display_name") == os.environ["NAME"], "getProfile: %r" % m)
m = r.call("getProfile", {"account": "bob", "recipient": "carol"})
check("error" in m and "result" not in m, "getProfile without a key is an error: %r" % m)
m = r.call("listContacts", {"account": "bob"})
names = {c["name"]: c.get("profile_name") for c in m["result"]}
check(names.get("alice") == os.environ["NAME"], "listContacts profile_name: %r" % m)
PY
    fail "daemon profile methods"
kill -TERM "${E2E_BG_PIDS[-1]}" 2>/dev/null || true
wait "${E2E_BG_PIDS[-1]}" 2>/dev/null || true
sc_ok bob send alice "hi from the builder"
receive_json alice "$E2E_DIR/alice9.json"
assert_eq "$(events message "$E2E_DIR/alice9.json" | jfield display_name)" "Bob Builder" \
    "alice sees bob's name (set through the daemon)"

log "at the end: no name in the server's files or logs; profiles padded to 512-byte buckets"
assert_eq "$(scan_server "Alice Liddell" "profilename" "$AVATAR_MARK" "Bob Builder" "Carol C" "Bob Renamed" "Bob Before")" "0" \
    "server data directory (db, WAL) after everything"
for f in "$E2E_DIR/server.out" "$E2E_DIR/server.err"; do
    if grep -a -q -e "Alice Liddell" -e "Bob Builder" -e "Carol C" -e "Bob Renamed" "$f"; then
        fail "a name is in $f"
    fi
done
# name-only profiles: version (1) + nonce (24) + 512 + tag (16), whatever the name's length
assert_eq "$(server_sql "SELECT group_concat(DISTINCT length(ciphertext)) FROM profiles")" "553" \
    "every name-only profile has the same size"

log "ok"
