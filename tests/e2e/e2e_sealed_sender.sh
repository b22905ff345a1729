#!/usr/bin/env bash
# Sealed sender between contacts (issue 12; docs/protocol.md "Sealed
# sender", client rules; docs/cli.md):
#  0. the trust root given out of band: `register --sealed-root` with
#     `sottod admin sealed-root`'s value registers and `config --json`
#     prints it; a wrong one makes register fail (exit 5); bad hex exit 2;
#  1. alice writes first (identified: she holds no profile key of bob's);
#     bob answers, sealed; from then on both seal;
#  2. alice -> bob sealed while bob is offline: the raw bytes of sottod.db and
#     its WAL gain no "alice" while the envelopes are queued (a stranger's
#     identified one, the control, does add "carol"), the queued rows carry
#     no sender; bob sees "alice" as the sender; carol's first message is
#     identified and arrives as a request; in a group each member's copy
#     follows the same rule (the contact's sealed, the stranger's identified);
#  3. with sottod-test's hooks (expired / other / rogue_root certificates)
#     alice's client refuses the bad certificate and sends identified (the
#     message arrives); with SOTTO_TEST_SEALED_ANY_CERT=1 it uses it anyway
#     and bob refuses the envelope: a "sealed_refused" event, the envelope
#     acked, bob's store files byte-identical;
#  4. a wrong or missing delivery token is refused by the server: alice's
#     send falls back to identified (delivered) and is noted; a token the
#     server lost (cleared by the operator) is back after bob's plain
#     re-login, and alice seals again;
#  4b. sender_cert_validity_s=60: alice caches her certificate (for half its
#     validity), bob is offline until it expired and still gets the message
#     (the expiry is checked at the envelope's server time);
#  5. a different trust root served at login is not pinned: a notice, and
#     alice sends identified; `config sealed off` sends identified too;
#  6. the operator runs `sottod admin new-sealed-root`: bob (old root pinned,
#     a certificate under it cached) gets the notice, sends to erin (who
#     pinned the new root) identified, and cleared his token, so erin's
#     sealed send is refused by the server and goes identified: nothing is
#     dropped on either side.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ -z "${SOTTOD_TEST:-}" ] || [ ! -x "${SOTTOD_TEST:-}" ]; then
    echo "SOTTOD_TEST (sottod-test, the test-hook build) not set: skipped"
    exit 77
fi

server_start --set scrub_delay_s=1 --set metrics_listen=off

log "0. the trust root given out of band at registration"
root=$("$SOTTOD" admin --data-dir "$SERVER_DATA" sealed-root)
[ "${#root}" -eq 66 ] || fail "sottod admin sealed-root printed \"$root\""
sc alice --server "$SERVER_URL" --pin "$SERVER_FP" register alice --sealed-root "${root:0:64}"
assert_rc 2 "register with a --sealed-root of 64 hex characters"
sc alice --server "$SERVER_URL" --pin "$SERVER_FP" register alice --sealed-root "$root"
assert_rc 0 "register alice --sealed-root (the server's)"
sc_ok alice --json config
assert_eq "$(jfield sealed_root <"$E2E_DIR/last.out")" "$root" "alice: config --json sealed_root"
sc_ok alice config
grep -q "^sealed-root: $root\$" "$E2E_DIR/last.out" || fail "config: no sealed-root line: $(cat "$E2E_DIR/last.out")"
other=05$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
sc dave --server "$SERVER_URL" --pin "$SERVER_FP" --json register dave --sealed-root "$other"
assert_rc 5 "register dave with another --sealed-root"
grep -q "not the one given with --sealed-root" "$E2E_DIR/last.err" ||
    fail "dave: no word of the other root: $(cat "$E2E_DIR/last.err")"
sc_ok dave --json config
assert_eq "$(jfield sealed_root <"$E2E_DIR/last.out")" "$other" "dave keeps the given root pinned"
register_all bob carol

# raw_hits NEEDLE: occurrences of NEEDLE in the raw bytes of sottod.db + WAL
raw_hits() {
    local n=0 f
    for f in "$SERVER_DATA/sottod.db" "$SERVER_DATA/sottod.db-wal"; do
        [ -f "$f" ] || continue
        n=$((n + $(grep -c -a -o -F -- "$1" "$f" || true)))
    done
    echo "$n"
}
# envelopes queued for bob's device 1 (all), and those with no sender (source_id 0)
queued_bob() { server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = 'bob' AND e.device_id = 1"; }
queued_bob_sealed() { server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = 'bob' AND e.device_id = 1 AND e.source_id = 0"; }
store_of() { find "$E2E_DIR/home/$1" -name store.db | head -n 1; }
# store_digest USER: per table of USER's store, a digest of its rows; not
# kt_own, which the login of every receive rewrites (own key-directory
# monitoring, kt.c), whatever arrives
store_digest() {
    python3 - "$(store_of "$1")" <<'PYEOF'
import hashlib, sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                        " AND name <> 'kt_own' ORDER BY name"):
    h = hashlib.sha256()
    for row in con.execute('SELECT * FROM "%s" ORDER BY 1' % t):
        h.update(repr(row).encode())
    print(t, h.hexdigest()[:16])
PYEOF
}
# msg_field FILE BODY FIELD: FIELD of the message event with BODY (absent: false)
msg_field() {
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line:
        ev = json.loads(line)
        if ev.get("type") == "message" and ev.get("body") == sys.argv[2]:
            v = ev.get(sys.argv[3])
            print("true" if v is True else "false" if v in (False, None) else v)
' "$1" "$2" "$3"
}

log "1. alice writes first (identified), bob answers (sealed)"
sc_ok alice send bob "hello bob"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(msg_field "$E2E_DIR/b1.json" "hello bob" from)" "alice" "bob: first message from alice"
assert_eq "$(msg_field "$E2E_DIR/b1.json" "hello bob" request)" "true" "alice's first message is a request"
sleep 2 # scrub delay: the WAL is truncated
base_bob=$(raw_hits bob)
sc_ok bob send alice "hello alice"
assert_eq "$(raw_hits bob)" "$base_bob" "\"bob\" in sottod.db + WAL with bob's sealed answer queued"
receive_json alice "$E2E_DIR/a1.json"
assert_eq "$(msg_field "$E2E_DIR/a1.json" "hello alice" from)" "bob" "alice: answer from bob"

log "2. alice -> bob sealed while bob is offline"
sleep 2
base=$(raw_hits alice)
q0=$(queued_bob)
sc_ok alice send bob "sealed one"
sc_ok alice send bob "sealed two"
after=$(raw_hits alice)
q1=$(queued_bob)
s1=$(queued_bob_sealed)
echo "\"alice\" in sottod.db + WAL: $base before, $after with $((q1 - q0)) sealed envelope(s) queued for bob"
[ "$((q1 - q0))" -ge 2 ] || fail "alice's two messages are not queued for bob ($q0 -> $q1)"
assert_eq "$after" "$base" "\"alice\" in the server's raw files while her sealed envelopes are queued"
assert_eq "$s1" "$q1" "bob's queued envelopes without a sender"
log "control: carol, a stranger, writes to bob identified"
base_c=$(raw_hits carol)
sc_ok carol send bob "from a stranger"
after_c=$(raw_hits carol)
echo "\"carol\" in sottod.db + WAL: $base_c before, $after_c with her identified envelope queued"
[ "$after_c" -gt "$base_c" ] || fail "the control found no \"carol\": the raw scan proves nothing"
assert_eq "$(queued_bob_sealed)" "$q1" "carol's envelope names its sender"
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(msg_field "$E2E_DIR/b2.json" "sealed one" from)" "alice" "sealed one: bob sees alice"
assert_eq "$(msg_field "$E2E_DIR/b2.json" "sealed two" from)" "alice" "sealed two: bob sees alice"
assert_eq "$(msg_field "$E2E_DIR/b2.json" "sealed one" request)" "false" "sealed one: not a request"
assert_eq "$(msg_field "$E2E_DIR/b2.json" "from a stranger" from)" "carol" "stranger's message"
assert_eq "$(msg_field "$E2E_DIR/b2.json" "from a stranger" request)" "true" "stranger: a request"
assert_eq "$(queued_bob)" "0" "bob's queue after receive"

log "2b. a group: per member the same rule (bob sealed, carol identified)"
sc_ok alice group create trio bob carol
sc_ok bob receive
sc_ok carol receive
sc_ok alice receive # the delivery receipts
alice_id=$(server_sql "SELECT id FROM accounts WHERE username = 'alice'")
src_of() { server_sql "SELECT group_concat(e.source_id) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = '$1'"; }
sc_ok alice group send trio "group hello"
assert_eq "$(src_of bob)" "0" "bob's copy of the group message: no sender on the server"
assert_eq "$(src_of carol)" "$alice_id" "carol's copy (not alice's contact): identified"
receive_json bob "$E2E_DIR/g1.json"
receive_json carol "$E2E_DIR/g2.json"
assert_eq "$(msg_field "$E2E_DIR/g1.json" "group hello" from)" "alice" "bob: group message from alice"
assert_eq "$(msg_field "$E2E_DIR/g2.json" "group hello" from)" "alice" "carol: group message from alice"

log "2c. bob links a laptop: it pins the root at its first login and opens sealed messages"
link_device bob laptop
sc_ok laptop receive
sc_ok bob receive
laptop_root=$(sqlite3 "$(store_of laptop)" "SELECT hex(value) FROM client_config WHERE key = 'sealed_root'")
bob_root=$(sqlite3 "$(store_of bob)" "SELECT hex(value) FROM client_config WHERE key = 'sealed_root'")
[ -n "$laptop_root" ] || fail "the laptop pinned no trust root"
assert_eq "$laptop_root" "$bob_root" "the laptop's pinned root"
sc_ok alice send bob "to both devices"
n_src() { server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = '$1' AND e.source_id = $2"; }
assert_eq "$(n_src bob 0)" "2" "both of bob's copies: no sender on the server"
assert_eq "$(n_src bob "$alice_id")" "0" "none of bob's envelopes names alice"
receive_json laptop "$E2E_DIR/l1.json"
assert_eq "$(msg_field "$E2E_DIR/l1.json" "to both devices" from)" "alice" "laptop: sealed from alice"
receive_json bob "$E2E_DIR/b2c.json"
assert_eq "$(msg_field "$E2E_DIR/b2c.json" "to both devices" from)" "alice" "bob: sealed from alice"

log "3. bad sender certificates (sottod-test hooks)"
alice_db=$(store_of alice)
REAL_SOTTOD=$SOTTOD
for mode in expired other rogue_root; do
    log "3.$mode"
    export SOTTOD_TEST_SENDER_CERT=$mode
    SOTTOD=$SOTTOD_TEST
    server_restart --set scrub_delay_s=1 --set metrics_listen=off
    grep -q "sender_cert=$mode" "$E2E_DIR/server.err" || fail "sottod-test did not log its hook $mode"
    # alice's cached certificate came from the normal server: gone
    sqlite3 "$alice_db" "DELETE FROM client_config WHERE key LIKE 'sealed_cert%'"
    # (a) alice checks what the server gave her: not used, the send goes
    # identified and arrives
    SOTTO_DEBUG_SEALED=1 sc alice send bob "checked $mode"
    assert_rc 0 "alice send (certificate $mode)"
    grep -q "sealed: .*sender certificate" "$E2E_DIR/last.err" ||
        fail "alice did not say why she sent identified: $(cat "$E2E_DIR/last.err")"
    receive_json bob "$E2E_DIR/b3a.json"
    assert_eq "$(msg_field "$E2E_DIR/b3a.json" "checked $mode" from)" "alice" "identified fallback ($mode)"
    # (b) alice told to use it anyway: bob refuses it
    sc alice receive >/dev/null # bob's receipts, so that only the test message is queued
    sleep 1
    store_digest bob >"$E2E_DIR/d0"
    SOTTO_TEST_SEALED_ANY_CERT=1 sc alice send bob "forged $mode"
    assert_rc 0 "alice send with the $mode certificate"
    [ "$(queued_bob_sealed)" -ge 1 ] || fail "no sealed envelope queued for bob ($mode)"
    receive_json bob "$E2E_DIR/b3b.json"
    cat "$E2E_DIR/b3b.json"
    assert_eq "$(events notice "$E2E_DIR/b3b.json" | grep -c '"code": "sealed_refused"')" "1" \
        "bob: one sealed_refused event ($mode)"
    assert_eq "$(count_message_bodies "$E2E_DIR/b3b.json" "forged $mode")" "0" "forged $mode not shown"
    assert_eq "$(queued_bob)" "0" "the refused envelope was acked ($mode)"
    store_digest bob >"$E2E_DIR/d1"
    diff "$E2E_DIR/d0" "$E2E_DIR/d1" || fail "bob's stored rows changed by the refusal ($mode)"
    sc_ok bob --json history alice
    if grep -q "forged $mode" "$E2E_DIR/last.out"; then fail "forged $mode in bob's history"; fi
done
unset SOTTOD_TEST_SENDER_CERT
SOTTOD=$REAL_SOTTOD
server_restart --set scrub_delay_s=1 --set metrics_listen=off
sqlite3 "$alice_db" "DELETE FROM client_config WHERE key LIKE 'sealed_cert%'"

log "4. wrong and missing delivery tokens: the server refuses, alice sends identified"
bob_key=$(sqlite3 "$alice_db" "SELECT hex(profile_key) FROM client_profiles WHERE name = 'bob'")
[ -n "$bob_key" ] || fail "alice holds no profile key of bob's"
sqlite3 "$alice_db" "UPDATE client_profiles SET profile_key = randomblob(32) WHERE name = 'bob'"
SOTTO_DEBUG_SEALED=1 sc alice send bob "wrong token"
assert_rc 0 "send with a wrong token"
grep -q "refused bob's delivery token" "$E2E_DIR/last.err" || fail "no note of the refused token: $(cat "$E2E_DIR/last.err")"
assert_eq "$(sqlite3 "$alice_db" "SELECT count(*) FROM client_config WHERE key = 'sealed_refused:bob'")" "1" \
    "the refused token is recorded"
receive_json bob "$E2E_DIR/b4.json"
assert_eq "$(msg_field "$E2E_DIR/b4.json" "wrong token" from)" "alice" "wrong token: delivered identified"
sqlite3 "$alice_db" "UPDATE client_profiles SET profile_key = x'$bob_key' WHERE name = 'bob'"
# an account without a token (an operator cleared it, or a restore from an
# older backup; sottod caches accounts: restarted to read it)
bob_token=$(server_sql "SELECT hex(delivery_token) FROM accounts WHERE username = 'bob'")
[ -n "$bob_token" ] || fail "the server holds no delivery token of bob's"
server_sql "UPDATE accounts SET delivery_token = NULL WHERE username = 'bob'"
server_restart --set scrub_delay_s=1 --set metrics_listen=off
SOTTO_DEBUG_SEALED=1 sc alice send bob "no token"
assert_rc 0 "send to an account without a token"
grep -q "refused bob.s delivery token" "$E2E_DIR/last.err" || fail "no note of the missing token"
receive_json bob "$E2E_DIR/b5.json"
assert_eq "$(msg_field "$E2E_DIR/b5.json" "no token" from)" "alice" "no token: delivered identified"
log "bob logs in again (nothing changed on his device): his client uploads the token again"
sc_ok bob receive
assert_eq "$(server_sql "SELECT hex(delivery_token) FROM accounts WHERE username = 'bob'")" \
    "$bob_token" "bob's delivery token on the server after a plain re-login"
# the identified copies queued for the laptop meanwhile would share pages
# with the next envelope (rewritten to the WAL with it): delivered first
sc_ok laptop receive
sqlite3 "$alice_db" "DELETE FROM client_config WHERE key = 'sealed_refused:bob'"
sc_ok alice receive
sleep 2
base=$(raw_hits alice)
sc_ok alice send bob "sealed again"
assert_eq "$(raw_hits alice)" "$base" "\"alice\" in the raw files: sealed again"
receive_json bob "$E2E_DIR/b6.json"
assert_eq "$(msg_field "$E2E_DIR/b6.json" "sealed again" from)" "alice" "sealed again"

log "4b. certificates valid 60 s: cached for half of it; bob offline until it expired"
server_restart --set scrub_delay_s=1 --set metrics_listen=off --set sender_cert_validity_s=60
sqlite3 "$alice_db" "DELETE FROM client_config WHERE key LIKE 'sealed_cert%'"
sc_ok alice send bob "short-lived certificate"
sent_at=$(date +%s)
assert_eq "$(queued_bob_sealed)" "$(queued_bob)" "bob's queue: sealed"
[ "$(queued_bob)" -ge 1 ] || fail "nothing queued for bob"
assert_eq "$(sqlite3 "$alice_db" "SELECT count(*) FROM client_config WHERE key = 'sealed_cert'")" \
    "1" "alice cached her 60 s certificate"
sc_ok alice send bob "same certificate"
assert_eq "$(queued_bob_sealed)" "$(queued_bob)" "bob's queue: sealed (2)"
wait_s=$((sent_at + 62 - $(date +%s)))
[ "$wait_s" -le 0 ] || sleep "$wait_s"
receive_json bob "$E2E_DIR/b6b.json"
assert_eq "$(events notice "$E2E_DIR/b6b.json" | grep -c '"code": "sealed_refused"')" "0" \
    "bob: no sealed_refused after the certificate expired"
assert_eq "$(msg_field "$E2E_DIR/b6b.json" "short-lived certificate" from)" "alice" \
    "sealed with a certificate that expired while bob was offline: delivered"
assert_eq "$(msg_field "$E2E_DIR/b6b.json" "same certificate" from)" "alice" "the second one too"
sc_ok laptop receive
server_restart --set scrub_delay_s=1 --set metrics_listen=off

log "5. config sealed off: identified"
sc_ok alice config sealed off
sc_ok alice --json config
assert_eq "$(jfield sealed <"$E2E_DIR/last.out")" "false" "config --json sealed"
sleep 2
base=$(raw_hits alice)
sc_ok alice send bob "identified by choice"
after=$(raw_hits alice)
[ "$after" -gt "$base" ] || fail "sealed off: the envelope does not name alice ($base -> $after)"
sc_ok alice config sealed on
receive_json bob "$E2E_DIR/b7.json"
assert_eq "$(msg_field "$E2E_DIR/b7.json" "identified by choice" from)" "alice" "sealed off: delivered"

log "5b. another trust root at login: not pinned, a notice, alice sends identified"
sqlite3 "$alice_db" "UPDATE client_config SET value = x'05$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')' WHERE key = 'sealed_root'"
sc_ok alice --json receive
assert_eq "$(events notice "$E2E_DIR/last.out" | grep -c '"code": "sealed_root_changed"')" "1" \
    "alice: sealed_root_changed notice"
sleep 2
base=$(raw_hits alice)
sc_ok alice send bob "root changed"
after=$(raw_hits alice)
[ "$after" -gt "$base" ] || fail "root changed: alice still sealed ($base -> $after)"
receive_json bob "$E2E_DIR/b8.json"
assert_eq "$(msg_field "$E2E_DIR/b8.json" "root changed" from)" "alice" "root changed: delivered identified"

log "6. the operator makes a new trust root (new-sealed-root): old and new clients"
# bob pinned the old root and holds a certificate under it (cached); erin
# registers after the change and pins the new one
server_stop_ok
old_root=$("$SOTTOD" admin --data-dir "$SERVER_DATA" sealed-root)
rm "$SERVER_DATA/sealed-root.key"
"$SOTTOD" admin --data-dir "$SERVER_DATA" new-sealed-root >/dev/null
server_restart --set scrub_delay_s=1 --set metrics_listen=off
new_root=$("$SOTTOD" admin --data-dir "$SERVER_DATA" sealed-root)
[ "$new_root" != "$old_root" ] || fail "new-sealed-root made no new root"
[ -n "$(sqlite3 "$(store_of bob)" "SELECT 1 FROM client_config WHERE key = 'sealed_cert'")" ] ||
    fail "bob holds no cached certificate: the test proves nothing"
register erin
sc_ok erin send bob "hi bob, erin here"
receive_json bob "$E2E_DIR/b9.json"
assert_eq "$(events notice "$E2E_DIR/b9.json" | grep -c '"code": "sealed_root_changed"')" "1" \
    "bob: sealed_root_changed notice"
assert_eq "$(server_sql "SELECT count(*) FROM accounts WHERE username = 'bob' AND delivery_token IS NULL")" \
    "1" "bob's token cleared on the server (no one can seal to him under the new root)"
sc_ok laptop receive
sc_ok bob send erin "hi erin"
erin_sealed() { server_sql "SELECT count(*) FROM envelopes e JOIN accounts a ON a.id = e.account_id WHERE a.username = 'erin' AND e.source_id = 0"; }
assert_eq "$(erin_sealed)" "0" "bob -> erin (bob's old-root certificate): not sealed"
receive_json erin "$E2E_DIR/e9.json"
assert_eq "$(events notice "$E2E_DIR/e9.json" | grep -c '"code": "sealed_refused"')" "0" \
    "erin: nothing refused"
assert_eq "$(msg_field "$E2E_DIR/e9.json" "hi erin" from)" "bob" "erin gets bob's message"
sc_ok bob receive
sc_ok erin send bob "erin to bob"
# erin holds bob's profile key (his message carried it) and tried to seal
# (her receipts, or this message): the server refused the token it derives
assert_eq "$(sqlite3 "$(store_of erin)" "SELECT count(*) FROM client_config WHERE key = 'sealed_refused:bob'")" \
    "1" "erin: bob's delivery token refused by the server"
assert_eq "$(queued_bob_sealed)" "0" "erin -> bob: nothing sealed queued for bob"
receive_json bob "$E2E_DIR/b10.json"
assert_eq "$(events notice "$E2E_DIR/b10.json" | grep -c '"code": "sealed_refused"')" "0" \
    "bob: nothing refused"
assert_eq "$(msg_field "$E2E_DIR/b10.json" "erin to bob" from)" "erin" "bob gets erin's message (identified)"
sc_ok bob receive
assert_eq "$(server_sql "SELECT count(*) FROM accounts WHERE username = 'bob' AND delivery_token IS NULL")" \
    "1" "bob's token stays cleared at his next login"

log "sealed sender: OK"
