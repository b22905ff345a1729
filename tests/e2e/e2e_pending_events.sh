#!/usr/bin/env bash
# Pending events (client_pending_events, client/core/store.c): a received
# message is stored, put on the pending list in the same transaction, shown,
# and only then taken off the list -- each shown exactly once in total:
#   never  "shown never": the client dies right after removing the row from
#          the list (before the fix that was before printing it: the message
#          was in `history` but never shown); and right after re-taking its
#          claim, just before printing (it is shown at the next receive)
#   twice  "shown twice": two `receive` processes on one account start while
#          a row is pending; both list it (the shim holds each one for a
#          moment before its first UPDATE/DELETE of the list: the claim, or
#          before the fix the removal) and only one may show it
# The crash and pause points come from crash_shim.c (LD_PRELOAD), which
# names the SQL it waits for; not run in sanitizer builds (no shim).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ -z "${SOTTO_E2E_SHIM:-}" ] || [ ! -f "${SOTTO_E2E_SHIM:-}" ]; then
    echo "skip: crash_shim not built (sanitizer build?)" >&2
    exit 77
fi

server_start
register alice
register bob

# shim_receive OUT VAR=VALUE...: bob's `receive --json` under the shim with
# the given environment; exit status in $RC.
shim_receive() {
    local out=$1
    shift
    RC=0
    (XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 "$E2E_TIMEOUT" \
        env "$@" LD_PRELOAD="$SOTTO_E2E_SHIM" \
        "$SOTTO" --account bob --json receive >"$out" 2>"$out.err" </dev/null
        exit $?) 2>>"$E2E_DIR/jobs.log" || RC=$?
}

# shown_once TEXT FILES...: TEXT was shown exactly once in FILES together,
# and is in bob's history exactly once.
shown_once() {
    local text=$1 total=0 f n
    shift
    for f in "$@"; do
        n=$(count_message_bodies "$f" "$text")
        total=$((total + n))
    done
    sc_ok bob --json history alice
    assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "$text")" "1" "copies of [$text] in bob's history"
    assert_eq "$total" "1" "times [$text] was shown in total ($*)"
}

parts=${E2E_PENDING_PARTS:-never twice}

# ---- shown never ----
n=0
[[ " $parts " == *" never "* ]] || n=99
for point in "DELETE FROM client_pending_events" "UPDATE client_pending_events SET claim_ms"; do
    [ "$n" = 99 ] && break
    n=$((n + 1))
    text="never $n: crash after [$point]"
    log "alice sends; bob's client dies right after: $point"
    sc_ok alice send bob "$text"
    rm -f "$E2E_DIR/mark"
    shim_receive "$E2E_DIR/never$n.json" SOTTO_E2E_CRASH=after-sql SOTTO_E2E_CRASH_SQL="$point" \
        SOTTO_E2E_CRASH_MARK="$E2E_DIR/mark"
    [ -f "$E2E_DIR/mark" ] || fail "[$point] the client never reached the crash point (rc=$RC): $(cat "$E2E_DIR/never$n.json.err")"
    assert_eq "$RC" "137" "[$point] exit status of the killed client"
    log "bob's client restarts"
    receive_json bob "$E2E_DIR/never$n.after.json"
    receive_json bob "$E2E_DIR/never$n.again.json"
    shown_once "$text" "$E2E_DIR/never$n.json" "$E2E_DIR/never$n.after.json" "$E2E_DIR/never$n.again.json"
done

# ---- shown twice ----
for n in 1 2 3; do
    [[ " $parts " == *" twice "* ]] || break
    text="twice $n"
    log "alice sends [$text]; bob stores it and dies before showing it"
    sc_ok alice send bob "$text"
    RC=0
    XDG_DATA_HOME="$E2E_DIR/home/bob" SOTTO_TEST_CRASH_AFTER_DECRYPT=1 timeout -k 2 "$E2E_TIMEOUT" \
        "$SOTTO" --account bob --json receive >"$E2E_DIR/twice$n.crash.json" 2>&1 </dev/null || RC=$?
    assert_eq "$RC" "99" "exit status at the crash hook"
    assert_eq "$(count_message_bodies "$E2E_DIR/twice$n.crash.json" "$text")" "0" "shown before the crash"

    log "two receives at once: the per-account lock lets one in, the other exits 10"
    pids=()
    for k in a b; do
        rm -f "$E2E_DIR/pause.$k"
        (XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 "$E2E_TIMEOUT" \
            env SOTTO_E2E_PAUSE_SQL=client_pending_events SOTTO_E2E_PAUSE_MS=2500 \
            SOTTO_E2E_PAUSE_MARK="$E2E_DIR/pause.$k" LD_PRELOAD="$SOTTO_E2E_SHIM" \
            "$SOTTO" --account bob --json receive >"$E2E_DIR/twice$n.$k.json" 2>"$E2E_DIR/twice$n.$k.err" </dev/null) &
        pids+=($!)
    done
    busy=0
    for k in 0 1; do
        RC=0
        wait "${pids[$k]}" || RC=$?
        [ "$RC" = 10 ] && busy=$((busy + 1))
        # the per-account lock lets one of them run and the other exit 10
        # ("account bob is in use by pid N"); a process that got in before
        # the other took the lock may still see its connection replaced (3);
        # what each printed counts either way
        case "$RC" in 0 | 3 | 10) ;; *) fail "concurrent receive exited $RC: $(cat "$E2E_DIR/twice$n.a.err" "$E2E_DIR/twice$n.b.err")" ;; esac
    done
    # since the per-account lock, the second process does not get in at all
    # (the pending-row claim stays as a second line of defence)
    assert_eq "$busy" "1" "receives refused with 'account in use' (exit 10)"
    grep -q "account bob is in use by pid" "$E2E_DIR/twice$n.a.err" "$E2E_DIR/twice$n.b.err" ||
        fail "no 'in use' message: $(cat "$E2E_DIR/twice$n.a.err" "$E2E_DIR/twice$n.b.err")"
    receive_json bob "$E2E_DIR/twice$n.after.json"
    shown_once "$text" "$E2E_DIR/twice$n.a.json" "$E2E_DIR/twice$n.b.json" "$E2E_DIR/twice$n.after.json"
done

log "ok"
