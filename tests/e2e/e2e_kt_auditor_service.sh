#!/usr/bin/env bash
# `sotto-auditor run` as a long-running service (docs/operating.md "Running an
# auditor"), with a real sottod:
#  - sottod closes every connection that has not logged in after
#    auth_timeout_s (30 s by default), and an auditor never logs in: the
#    auditor must reopen its connection quietly and keep countersigning,
#    without a "cannot audit now" warning every auth_timeout_s (here 1 s, so
#    several closes happen within a few seconds);
#  - sottod restarted while the auditor runs: the auditor reports the outage
#    (stderr), reconnects ("reconnected after N s" on stdout) and
#    countersigns again, so an account registered after the restart is
#    published;
#  - SIGTERM ends `run` with exit 0;
#  - `sotto --json kt check` before the auditor ran: published false, counter
#    null and a reason; `kt check USER` of a user not pinned: matches null.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

AUDITOR=${SOTTO_AUDITOR:-$(dirname "$SOTTO")/../auditor/sotto-auditor}
[ -x "$AUDITOR" ] || fail "no sotto-auditor at $AUDITOR (set SOTTO_AUDITOR)"
AUD_DIR="$E2E_DIR/auditor"

server_start
"$AUDITOR" init --dir "$AUD_DIR" --server "$SERVER_URL" --pin "$SERVER_FP" \
    >"$E2E_DIR/aud.init" 2>&1 || fail "auditor init: $(cat "$E2E_DIR/aud.init")"
aud_key=$(sed -n 's/^auditor key: \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/aud.init")
[ -n "$aud_key" ] || fail "no auditor key: $(cat "$E2E_DIR/aud.init")"
SRV_OPTS=(--set "kt_auditors=$aud_key" --set auth_timeout_s=1)
server_restart "${SRV_OPTS[@]}"

register alice
sc_ok alice kt auditor add "$aud_key"

log "before the auditor ran: alice's own entry cannot be checked, and --json says why"
sc alice --json kt check
assert_rc 0 "kt check (own) before the auditor ran"
assert_eq "$(jfield published <"$E2E_DIR/last.out")" "false" "own entry published"
grep -q '"counter":null' "$E2E_DIR/last.out" || fail "counter not null: $(cat "$E2E_DIR/last.out")"
grep -q '"reason":"waiting until the key directory publishes alice' "$E2E_DIR/last.out" ||
    fail "no reason in $(cat "$E2E_DIR/last.out")"

# not under `timeout`: the cleanup's SIGKILL must reach the auditor itself
"$AUDITOR" run --dir "$AUD_DIR" --interval 0.25 >"$E2E_DIR/aud.out" 2>"$E2E_DIR/aud.err" &
AUD_PID=$!
E2E_BG_PIDS+=("$AUD_PID")

# published USER: until alice's `kt check USER` finds USER in the published
# (countersigned) directory; at most 15 s
published() {
    for _ in $(seq 1 75); do
        sc alice --json kt check "$1"
        [ "$RC" = 0 ] && return 0
        sleep 0.2
    done
    fail "$1 never published (last exit $RC: $(cat "$E2E_DIR/last.err"); auditor: $(cat "$E2E_DIR/aud.err"))"
}

log "auditor connections closed by the server's auth timeout (1 s): no warnings"
register bob
published bob
assert_eq "$(jfield pinned <"$E2E_DIR/last.out")" "false" "bob pinned by alice"
grep -q '"matches":null' "$E2E_DIR/last.out" ||
    fail "matches not null with nothing pinned: $(cat "$E2E_DIR/last.out")"
sleep 4 # four auth timeouts at least
register carol
published carol
if grep -q 'cannot audit now' "$E2E_DIR/aud.err"; then
    fail "the auditor reports a network failure for the server's auth timeout: $(cat "$E2E_DIR/aud.err")"
fi
kill -0 "$AUD_PID" 2>/dev/null || fail "the auditor exited: $(cat "$E2E_DIR/aud.err")"

log "sottod restarted under a running auditor: it reconnects and countersigns again"
server_stop_ok
sleep 1.5 # the auditor sees the server gone for a while
server_restart "${SRV_OPTS[@]}"
register dave
published dave
wait_for "$E2E_DIR/aud.out" 10 "reconnected after"
kill -0 "$AUD_PID" 2>/dev/null || fail "the auditor exited: $(cat "$E2E_DIR/aud.err")"

log "SIGTERM: exit 0"
kill -TERM "$AUD_PID"
rc=0
wait "$AUD_PID" || rc=$?
assert_eq "$rc" "0" "sotto-auditor run exit status after SIGTERM"
grep -q 'STOPPED' "$E2E_DIR/aud.err" && fail "the auditor stopped: $(cat "$E2E_DIR/aud.err")"

log "ok"
