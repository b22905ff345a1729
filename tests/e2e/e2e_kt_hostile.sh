#!/usr/bin/env bash
# A hostile operator against key transparency (issue 9, "Tests: Hostile
# operator"; docs/protocol.md "Key transparency"), with a real sottod-test,
# real `sotto` clients and a real `sotto-auditor`:
#
# Server 1 (auditor A1 in kt_auditors; alice and carol require A1):
#  (a) SOTTOD_TEST_KT_FORK=alice:bob: the server forges an identity for bob
#      (account key, a device list for "bob" signed by it, device keys) and
#      shows it to alice with a forked log whose head A1 never saw. alice's
#      first message to bob is refused (exit 9, "not countersigned by auditor
#      A1") and nothing is pinned for bob; carol, same auditor, writes to bob
#      and bob reads it. Control: the same server without the fork: alice's
#      message to bob goes out, and a normal restart raises no alert.
#  (d) SOTTOD_TEST_KT_INJECT=bob: the server publishes, for bob, a device
#      list version bob's account never signed (counter + 1: A1 accepts and
#      countersigns it, it cannot see values). bob's next login raises the
#      key-directory alert naming that version, on his primary and on his
#      linked device bob2; alice is unaffected. The next normal start
#      restores bob's real value: the directory looks right again, but the
#      update counter moved twice for no new version, and bob still alerts.
#
# Server 2 (no kt_auditors: every durable head is published; the clients
# require no auditor, so only consistency proofs protect them; auditor A2
# follows the log, its countersignatures are refused, it keeps verifying):
#  (b) the operator stops the server and changes one kt_log commitment; the
#      server replays and re-signs the edited log. amy, who holds a head,
#      refuses it (exit 9, "rewritten"); after the log grows, her first
#      message to a NEW contact is refused ("does not extend"); A2's next run
#      exits 3 with STOPPED, and `sotto-auditor status` exits 3.
#  (c) from the state before (b) (server data and A2 copied while stopped):
#      the operator deletes the last kt_log row; amy refuses (exit 9, "went
#      back ... truncated"), A2 stops (exit 3, "truncated").
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

: "${SOTTOD_TEST:?set SOTTOD_TEST to the sottod-test binary (built with test hooks)}"
if [ -z "${SOTTO_AUDITOR:-}" ] || [ ! -x "${SOTTO_AUDITOR:-}" ]; then
    echo "SOTTO_AUDITOR (the sotto-auditor binary) is not set: skipped" >&2
    exit 77
fi
SOTTOD=$SOTTOD_TEST

store_of() { echo "$E2E_DIR/home/$1/sotto/$1/store.db"; }
log_size() { server_sql "SELECT count(*) FROM kt_log"; }
# wait_log_size N: the server's log holds N entries and a head for N is signed
wait_log_size() {
    for _ in $(seq 1 100); do
        if [ "$(log_size)" = "$1" ] &&
            [ "$(server_sql "SELECT count(*) FROM kt_heads WHERE size = $1")" != "0" ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "the server's log did not reach $1 entries (it holds $(log_size))"
}
# kt_info: the server's KT keys as `sottod --kt-info` prints them, in $KT_KEY, $KT_VRF
kt_info() {
    "$SOTTOD" --data-dir "$SERVER_DATA" --kt-info >"$E2E_DIR/ktinfo" 2>"$E2E_DIR/ktinfo.err" ||
        fail "sottod --kt-info: $(cat "$E2E_DIR/ktinfo.err")"
    KT_KEY=$(sed -n 's/^kt_server_key \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/ktinfo")
    KT_VRF=$(sed -n 's/^kt_vrf_key \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/ktinfo")
    if [ -z "$KT_KEY" ] || [ -z "$KT_VRF" ]; then
        fail "no keys in sottod --kt-info: $(cat "$E2E_DIR/ktinfo")"
    fi
}
# aud ARGS...: runs sotto-auditor; exit code in $ARC, output in aud.out/aud.err
aud() {
    ARC=0
    timeout -k 2 "$E2E_TIMEOUT" "$SOTTO_AUDITOR" "$@" >"$E2E_DIR/aud.out" 2>"$E2E_DIR/aud.err" ||
        ARC=$?
}
aud_ok() {
    aud "$@"
    [ "$ARC" = 0 ] || fail "sotto-auditor $*: exit $ARC: $(cat "$E2E_DIR/aud.err")"
}
# aud_init DIR: a new auditor pinned to the server's key given out of band;
# its key in $AUD_KEY
aud_init() {
    aud_ok init --dir "$1" --server "$SERVER_URL" --pin "$SERVER_FP" --server-key "$KT_KEY"
    AUD_KEY=$(sed -n 's/^auditor key: \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/aud.out")
    [[ "$AUD_KEY" =~ ^[0-9a-f]{64}$ ]] || fail "no auditor key: $(cat "$E2E_DIR/aud.out")"
}
# aud_stopped DIR WHAT PATTERN: the auditor's next run and its status exit 3
# with STOPPED and PATTERN (grep -E) in the reason
aud_stopped() {
    aud run --dir "$1" --once
    [ "$ARC" = 3 ] || fail "$2: auditor run exit $ARC (expected 3): $(cat "$E2E_DIR/aud.err")"
    grep -q "sotto-auditor: STOPPED: " "$E2E_DIR/aud.err" || fail "$2: no STOPPED line: $(cat "$E2E_DIR/aud.err")"
    grep -Eq "$3" "$E2E_DIR/aud.err" || fail "$2: the reason does not match [$3]: $(cat "$E2E_DIR/aud.err")"
    aud status --dir "$1"
    [ "$ARC" = 3 ] || fail "$2: auditor status exit $ARC (expected 3)"
    grep -q "^state: *STOPPED since " "$E2E_DIR/aud.out" || fail "$2: status: $(cat "$E2E_DIR/aud.out")"
    aud run --dir "$1" --once
    [ "$ARC" = 3 ] || fail "$2: a stopped auditor ran again (exit $ARC)"
}
# notices CODE FILE: notice events with code CODE in FILE (JSON lines)
notices() {
    events notice "$2" | python3 -c '
import json, sys
for line in sys.stdin:
    ev = json.loads(line)
    if ev.get("code") == sys.argv[1]:
        print(json.dumps(ev, sort_keys=True))
' "$1"
}
# kt_alerts FILE: the key-directory alerts (own_device_alert notices) in FILE
kt_alerts() { notices own_device_alert "$1" | grep -F 'key directory' || true; }
# own_list_version USER: the version of USER's own signed list in its store
own_list_version() {
    sqlite3 -batch "$(store_of "$1")" "SELECT list_version FROM client_accounts WHERE name = '$1'"
}

# ============================================================ server 1
SERVER_DATA=$E2E_DIR/s1
server_start
for u in alice bob carol; do
    register "$u"
done
wait_log_size 3
kt_info

log "bob links a second device (bob2)"
sc bob2 --server "$SERVER_URL" --pin "$SERVER_FP" --json link-request --kt-key "$KT_KEY" --kt-vrf-key "$KT_VRF"
assert_rc 0 "link-request bob2"
code=$(jfield code <"$E2E_DIR/last.out")
sc_ok bob --json device-add "$code"
sc_ok bob2 --json link-finish bob "$(jfield device <"$E2E_DIR/last.out")" "$(jfield account_key <"$E2E_DIR/last.out")"
wait_log_size 4

log "auditor A1: follows server 1, whose operator lists it in kt_auditors"
aud_init "$E2E_DIR/aud1"
A1=$AUD_KEY
sc_ok alice kt auditor add "$A1"
sc_ok carol kt auditor add "$A1"

# ------------------------------------------------------------ (a)
log "(a) the server forges an identity for bob and shows it to alice"
SOTTOD_TEST_KT_FORK=alice:bob server_restart --set "kt_auditors=$A1"
grep -q 'kt_fork viewer=alice target=bob' "$E2E_DIR/server.err" || fail "the fork hook is not active"
aud_ok run --dir "$E2E_DIR/aud1" --once
grep -q "countersigned head 4 .*now published" "$E2E_DIR/aud.out" ||
    fail "A1 did not countersign head 4: $(cat "$E2E_DIR/aud.out") $(cat "$E2E_DIR/aud.err")"

sc alice send bob "for bob only"
assert_rc 9 "alice's first message to bob under the fork"
grep -q "is not countersigned by auditor $A1" "$E2E_DIR/last.err" ||
    fail "alice's refusal does not name the missing countersignature: $(cat "$E2E_DIR/last.err")"
# the server did serve a forgery (made on alice's first request that needed it)
grep -q 'test_hook_kt_forged.*target=bob devices=2' "$E2E_DIR/server.err" ||
    fail "the server made no forged identity for bob"
grep -q 'test_hook_kt_fork_built size=5' "$E2E_DIR/server.err" || fail "no fork of size 5"
# nothing of bob's is kept (the message waits in alice's queue): no contact
# with devices, no pinned key
sc_ok alice --json contacts
case "$(grep '"name":"bob"' "$E2E_DIR/last.out" | jfield devices)" in
"" | 0) ;;
*) fail "alice keeps devices of bob: $(cat "$E2E_DIR/last.out")" ;;
esac
assert_eq "$(sqlite3 -batch "$(store_of alice)" "SELECT count(*) FROM client_accounts WHERE name = 'bob'")" \
    "0" "bob's account key pinned by alice"
sc alice safety-number --no-qr bob
[ "$RC" != 0 ] || fail "alice has a safety number for bob: $(cat "$E2E_DIR/last.out")"
grep -q "is not countersigned by auditor $A1" "$E2E_DIR/last.err" ||
    fail "safety-number bob: $(cat "$E2E_DIR/last.err")"
# alice's own check sees the same unaudited head
sc alice --json kt check
assert_rc 9 "alice's own check under the fork"
case "$(jfield alerts <"$E2E_DIR/last.out")" in
*"not countersigned by auditor $A1"*) ;;
*) fail "alice's own check: $(cat "$E2E_DIR/last.out")" ;;
esac

log "(a) carol, same auditor, sees the real bob"
sc_ok carol send bob "from carol"
receive_json bob "$E2E_DIR/bob1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/bob1.json" "from carol")" "1" "bob got carol's message"
assert_eq "$(count_message_bodies "$E2E_DIR/bob1.json" "for bob only")" "0" \
    "alice's refused message did not reach bob"

log "(a) control: the same server without the fork; a normal restart raises no alert"
server_restart --set "kt_auditors=$A1"
assert_eq "$(grep -c 'kt_fork viewer' "$E2E_DIR/server.err")" "1" "fork hook lines after the restart without it"
aud_ok run --dir "$E2E_DIR/aud1" --once
sc_ok alice send bob "control"
sc_ok alice --json flush
assert_eq "$(jfield queued <"$E2E_DIR/last.out")" "0" "alice's queue after the flush"
sc_ok alice --json kt check bob
assert_eq "$(jfield matches <"$E2E_DIR/last.out")" "true" "alice pinned bob's real key"
v_bob=$(own_list_version bob)
assert_eq "$v_bob" "2" "bob's list version (bob2 linked)"
receive_json bob "$E2E_DIR/bob2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/bob2.json" "control")" "1" "bob got alice's message"
assert_eq "$(count_message_bodies "$E2E_DIR/bob2.json" "for bob only")" "1" \
    "bob got alice's message queued during the fork"
assert_eq "$(kt_alerts "$E2E_DIR/bob2.json")" "" "bob: key-directory alerts after a normal restart"
receive_json bob2 "$E2E_DIR/bob2b.json"
assert_eq "$(kt_alerts "$E2E_DIR/bob2b.json")" "" "bob2: key-directory alerts after a normal restart"
sc_ok bob --json kt check
assert_eq "$(jfield alerts <"$E2E_DIR/last.out")" "[]" "bob's own check"
base=$(jfield counter <"$E2E_DIR/last.out")

# ------------------------------------------------------------ (d)
log "(d) the server publishes a device list bob never signed"
SOTTOD_TEST_KT_INJECT=bob server_restart --set "kt_auditors=$A1"
grep -q "kt_inject=bob version=$((v_bob + 1))" "$E2E_DIR/server.err" || fail "the inject hook is not active"
wait_log_size 5
aud_ok run --dir "$E2E_DIR/aud1" --once # the auditor cannot see it: counter + 1
grep -q "countersigned head 5 .*now published" "$E2E_DIR/aud.out" ||
    fail "A1 did not countersign head 5: $(cat "$E2E_DIR/aud.out") $(cat "$E2E_DIR/aud.err")"
for dev in bob bob2; do
    receive_json "$dev" "$E2E_DIR/$dev.d.json"
    kt_alerts "$E2E_DIR/$dev.d.json" >"$E2E_DIR/$dev.d.alerts"
    assert_eq "$(wc -l <"$E2E_DIR/$dev.d.alerts" | tr -d ' ')" "1" "$dev: key-directory alerts"
    case "$(jfield body <"$E2E_DIR/$dev.d.alerts")" in
    *"list version $((v_bob + 1)), update $((base + 1)))"*"version $((v_bob + 1)) newer than your account's newest ($v_bob)"*"never signed"*) ;;
    *) fail "$dev's alert does not name version $((v_bob + 1)): $(cat "$E2E_DIR/$dev.d.alerts")" ;;
    esac
done
sc bob2 --json kt check
assert_rc 9 "bob2's own check"
log "(d) alice is unaffected"
sc_ok alice --json kt check
assert_eq "$(jfield alerts <"$E2E_DIR/last.out")" "[]" "alice's own check"
sc_ok alice send bob "still to bob"
receive_json bob "$E2E_DIR/bob3.json"
assert_eq "$(count_message_bodies "$E2E_DIR/bob3.json" "still to bob")" "1" "bob got it"

log "(d) the next normal start restores bob's value: the counter still shows it"
server_restart --set "kt_auditors=$A1"
wait_log_size 6
aud_ok run --dir "$E2E_DIR/aud1" --once
sc bob --json kt check
assert_rc 9 "bob's own check after the restore"
assert_eq "$(jfield version <"$E2E_DIR/last.out")" "$v_bob" "the directory holds bob's real version again"
case "$(jfield alerts <"$E2E_DIR/last.out")" in
*"changed 2 time(s) since the last check (update $base then $((base + 2))) while your device list version rose by 0"*) ;;
*) fail "bob's counter alert: $(cat "$E2E_DIR/last.out")" ;;
esac
server_stop_ok

# ============================================================ server 2
SERVER_DATA=$E2E_DIR/s2
server_start
for u in amy ben cal; do
    register "$u"
done
wait_log_size 3
kt_info
aud_init "$E2E_DIR/aud2"
aud_ok run --dir "$E2E_DIR/aud2" --once
aud_ok status --dir "$E2E_DIR/aud2"
grep -q "^verified updates: *3$" "$E2E_DIR/aud.out" || fail "A2 status: $(cat "$E2E_DIR/aud.out")"
sc_ok amy send ben "hello ben"
sc_ok amy --json kt status
assert_eq "$(jfield head.size <"$E2E_DIR/last.out")" "3" "the head amy holds"
server_stop_ok
cp -a "$SERVER_DATA" "$E2E_DIR/s2.before"
cp -a "$E2E_DIR/aud2" "$E2E_DIR/aud2.before"

# ------------------------------------------------------------ (b)
log "(b) the operator rewrites one log entry while the server is stopped"
server_sql "UPDATE kt_log SET commitment = zeroblob(32) WHERE pos = 1"
assert_eq "$(server_sql "SELECT hex(commitment) FROM kt_log WHERE pos = 1")" "$(printf '%064d' 0)" \
    "the edited commitment"
mark=$(wc -l <"$E2E_DIR/server.err")
server_restart
tail -n +"$((mark + 1))" "$E2E_DIR/server.err" | grep -q 'kt_head_resigned.*size=3' ||
    fail "the server did not re-sign the edited log"
sc amy kt check ben
assert_rc 9 "amy's check against the rewritten log"
grep -q "the key directory's log was rewritten: two tree heads of size 3 with different roots" \
    "$E2E_DIR/last.err" || fail "amy's refusal: $(cat "$E2E_DIR/last.err")"
register dan
wait_log_size 4
sc amy send dan "to a new contact"
assert_rc 9 "amy's first message to dan on the rewritten log"
grep -q "the key directory's log is inconsistent: the tree head of size 4 does not extend the one of size 3" \
    "$E2E_DIR/last.err" || fail "amy's refusal of dan: $(cat "$E2E_DIR/last.err")"
assert_eq "$(sqlite3 -batch "$(store_of amy)" "SELECT count(*) FROM client_accounts WHERE name = 'dan'")" \
    "0" "dan pinned by amy"
sc_ok amy --json kt status
assert_eq "$(jfield head.size <"$E2E_DIR/last.out")" "3" "amy still holds her head"
# each command refused twice: at login (amy's own check) and for the contact
assert_eq "$(jfield evidence <"$E2E_DIR/last.out")" "4" "amy's evidence"
assert_eq "$(sqlite3 -batch "$(store_of amy)" "SELECT count(*) FROM kt_evidence WHERE kind = 'inconsistent'")" \
    "4" "amy's inconsistency evidence"
aud_stopped "$E2E_DIR/aud2" "rewrite" "the server's tree head 4 does not match the log I verified"
server_stop_ok

# ------------------------------------------------------------ (c)
log "(c) from the state before (b): the operator truncates the log"
rm -rf "$SERVER_DATA" "$E2E_DIR/aud2"
cp -a "$E2E_DIR/s2.before" "$SERVER_DATA"
cp -a "$E2E_DIR/aud2.before" "$E2E_DIR/aud2"
server_sql "DELETE FROM kt_log WHERE pos >= 2"
server_restart
assert_eq "$(log_size)" "2" "the server's log after the truncation"
sc amy kt check ben
assert_rc 9 "amy's check against the truncated log"
grep -q "the key directory's log went back: the server served a tree head of size 2 after one of size 3 (a truncated log)" \
    "$E2E_DIR/last.err" || fail "amy's refusal: $(cat "$E2E_DIR/last.err")"
aud_stopped "$E2E_DIR/aud2" "truncate" "log truncated: head size 2 < verified 3"

log "ok"
