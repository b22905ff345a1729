#!/usr/bin/env bash
# A hostile operator hides an account's own directory entry from its owner
# (issue 9, the owner rule; docs/protocol.md "Client: monitoring its own
# entry"). Contacts pin keys from the PUBLISHED directory, and only the
# owner's devices can tell a forged entry from a real one; a server that
# answers the owner "not published yet" (STATUS_KT_PENDING) forever would
# never be caught. The client accepts that answer only for a while: once its
# own entry has gone unchecked for longer than a day (and kt_max_age_s) it
# alerts.
#
# Real sottod (no auditor: every durable head is published) and real sotto
# clients. The operator stops the server and moves bob's directory row past
# the end of the published log (kt_entries.pos), so every search for bob is
# answered PENDING from then on (a stand-in for a server that answers PENDING
# to bob only). bob's `kt check` right away: nothing to check yet (exit 0);
# the same 25 hours later (SOTTO_TEST_CLOCK_OFFSET_MS): exit 9, an alert
# naming the answer; a stored notice. alice, whose entry is fine: 25 hours
# later the server's newest head is a day old (a stopped auditor looks the
# same): no alert at first, an alert once that too lasts a day; back in the
# present her entry verifies and the clock stops.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

# published WHO: until WHO's own entry is in the published directory
published() {
    for _ in $(seq 1 100); do
        sc "$1" --json kt check
        if [ "$RC" = 0 ] && grep -q '"published":true' "$E2E_DIR/last.out"; then
            return 0
        fi
        sleep 0.1
    done
    fail "$1's entry never published (last exit $RC: $(cat "$E2E_DIR/last.out" "$E2E_DIR/last.err"))"
}

log "an honest directory: both owners check their entries, clean"
published alice
published bob
grep -q '"alerts":\[\]' "$E2E_DIR/last.out" || fail "bob alerted: $(cat "$E2E_DIR/last.out")"

log "the operator hides bob's entry from searches (PENDING forever)"
server_stop_ok
server_sql "UPDATE kt_entries SET pos = 1000000000 WHERE username = 'bob'"
server_restart

sc bob --json kt check
assert_rc 0 "bob's first check while his entry is hidden (a change of his may be on its way)"
grep -q '"published":false' "$E2E_DIR/last.out" || fail "bob's entry is published: $(cat "$E2E_DIR/last.out")"
grep -q '"alerts":\[\]' "$E2E_DIR/last.out" || fail "bob alerted at once: $(cat "$E2E_DIR/last.out")"

log "25 hours later bob's entry is still hidden: bob's device alerts"
export SOTTO_TEST_CLOCK_OFFSET_MS=$((25 * 3600 * 1000))
sc bob --json kt check
assert_rc 9 "bob's check 25 hours later"
grep -q 'not been shown' "$E2E_DIR/last.out" || fail "no alert text: $(cat "$E2E_DIR/last.out")"
grep -q 'not published yet' "$E2E_DIR/last.out" || fail "the alert does not name the answer: $(cat "$E2E_DIR/last.out")"

log "the login check stores it as a notice (once)"
sc_ok bob receive
sc_ok bob receive
notices=$(sqlite3 -batch "$E2E_DIR/home/bob/sotto/bob/store.db" \
    "SELECT count(*) FROM client_messages WHERE kind = 'notice' AND body LIKE '%not been shown%'")
assert_eq "$notices" "1" "bob's notices about his hidden entry"

log "alice, 25 hours later: the server's head is a day old now (its clock did not move):"
log "not a contradiction, no alert yet (a slow auditor must not alarm anyone)"
sc alice --json kt check
assert_rc 0 "alice's check 25 hours later"
grep -q '"alerts":\[\]' "$E2E_DIR/last.out" || fail "alice alerted: $(cat "$E2E_DIR/last.out")"
log "... but a day after that, still no fresh head: alice alerts too"
export SOTTO_TEST_CLOCK_OFFSET_MS=$((50 * 3600 * 1000))
sc alice --json kt check
assert_rc 9 "alice's check 50 hours later"
grep -q 'older than this device accepts' "$E2E_DIR/last.out" ||
    fail "no alert about the old head: $(cat "$E2E_DIR/last.out")"
unset SOTTO_TEST_CLOCK_OFFSET_MS

log "back to the present: alice's entry verifies again, the clock stops"
sc alice --json kt check
assert_rc 0 "alice's check now"
grep -q '"published":true' "$E2E_DIR/last.out" || fail "alice's entry: $(cat "$E2E_DIR/last.out")"
unverified=$(sqlite3 -batch "$E2E_DIR/home/alice/sotto/alice/store.db" \
    "SELECT count(*) FROM client_config WHERE key = 'kt_own_unverified_ms'")
assert_eq "$unverified" "0" "alice's unverified clock after a good check"

server_stop_ok
log "PASS"
