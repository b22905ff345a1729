#!/usr/bin/env bash
# The client dies between decrypting an envelope and acking it. Restarted,
# it shows every message exactly once in total (output of both runs), stores
# it once (history), and the server then holds no envelope -- except when it
# died while printing (after-output): a row leaves the pending list only
# after its event was handed out, so that one is shown again, with the same
# history id (never lost; e2e_pending_events.sh). Crash points:
#   hook           the client's own test hook SOTTO_TEST_CRASH_AFTER_DECRYPT=1
#                  (_exit(99) right after the envelope's transaction committed)
#   hook-2-of-3    the same at the 2nd of 3 queued envelopes
# and with crash_shim.c (LD_PRELOAD; SIGKILL, not built in sanitizer builds):
#   before-commit  decrypted, the local transaction not committed
#   after-commit   committed, not printed
#   after-output   printed, not acked
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

points="hook hook-2-of-3"
if [ -n "${SOTTO_E2E_SHIM:-}" ] && [ -f "${SOTTO_E2E_SHIM:-}" ]; then
    points="$points before-commit after-commit after-output"
else
    echo "note: crash_shim not built (sanitizer build?): only the hook crash points run" >&2
fi
points=${E2E_CRASH_POINTS:-$points}

server_start
register alice
register bob

# crash_receive POINT OUT: bob's receive, made to die at POINT.
crash_receive() {
    local point=$1 out=$2
    rm -f "$E2E_DIR/mark"
    RC=0
    case "$point" in
    hook | hook-2-of-3)
        local n=1
        [ "$point" = hook-2-of-3 ] && n=2
        XDG_DATA_HOME="$E2E_DIR/home/bob" SOTTO_TEST_CRASH_AFTER_DECRYPT=$n timeout -k 2 "$E2E_TIMEOUT" \
            "$SOTTO" --account bob --json receive >"$out" 2>"$out.err" </dev/null || RC=$?
        assert_eq "$RC" "99" "[$point] exit status of the client at its crash hook"
        ;;
    *)
        # in a subshell so that bash's "Killed" job message goes to a file
        (XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 "$E2E_TIMEOUT" \
            env SOTTO_E2E_CRASH="$point" SOTTO_E2E_CRASH_MARK="$E2E_DIR/mark" LD_PRELOAD="$SOTTO_E2E_SHIM" \
            "$SOTTO" --account bob --json receive >"$out" 2>"$out.err" </dev/null
            exit $?) 2>>"$E2E_DIR/jobs.log" || RC=$?
        [ -f "$E2E_DIR/mark" ] || fail "[$point] the client never reached the crash point (rc=$RC): $(cat "$out.err")"
        assert_eq "$RC" "137" "[$point] exit status of the killed client (128 + SIGKILL)"
        ;;
    esac
}

n=0
for point in $points; do
    n=$((n + 1))
    texts=("message $n, crash at $point")
    if [ "$point" = hook-2-of-3 ]; then
        texts=("message $n.1, crash at $point" "message $n.2, crash at $point" "message $n.3, crash at $point")
    fi
    log "alice sends ${#texts[@]} message(s); bob's client dies at $point"
    for t in "${texts[@]}"; do
        sc_ok alice send bob "$t"
    done
    crash_receive "$point" "$E2E_DIR/crash-$point.json"
    [ "$(server_sql "SELECT count(*) FROM envelopes")" -ge 1 ] ||
        fail "[$point] nothing left queued on the server: the crashed envelope was acked"

    log "bob's client restarts"
    receive_json bob "$E2E_DIR/after-$point.json"
    assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "0" "[$point] envelopes left after restart"
    assert_eq "$(events notice "$E2E_DIR/after-$point.json" | wc -l)" "0" "[$point] notices after restart"
    sc_ok bob --json history alice
    cp "$E2E_DIR/last.out" "$E2E_DIR/history-$point.json"
    for t in "${texts[@]}"; do
        assert_eq "$(count_message_bodies "$E2E_DIR/history-$point.json" "$t")" "1" "[$point] copies of [$t] in bob's history"
        before=$(count_message_bodies "$E2E_DIR/crash-$point.json" "$t")
        after=$(count_message_bodies "$E2E_DIR/after-$point.json" "$t")
        shown=1
        [ "$point" = after-output ] && shown=2
        assert_eq "$((before + after))" "$shown" \
            "[$point] times [$t] was shown in total (receive output before + after the restart: $before + $after)"
        case "$point" in
        hook | before-commit | after-commit) assert_eq "$before" "0" "[$point] shown before the crash" ;;
        after-output)
            assert_eq "$before" "1" "[$point] shown before the crash"
            id_before=$(grep -F "\"body\":\"$t\"" "$E2E_DIR/crash-$point.json" | jfield id)
            id_after=$(grep -F "\"body\":\"$t\"" "$E2E_DIR/after-$point.json" | jfield id)
            [ -n "$id_before" ] || fail "[$point] no history id in the event"
            assert_eq "$id_after" "$id_before" "[$point] history id of the repeated event"
            ;;
        esac
    done
    receive_json bob "$E2E_DIR/again-$point.json"
    [ -s "$E2E_DIR/again-$point.json" ] && fail "[$point] a third receive shows: $(cat "$E2E_DIR/again-$point.json")"
done

log "the session survived: both directions still work"
sc_ok bob send alice "after three crashes"
receive_json alice "$E2E_DIR/a.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a.json" "after three crashes")" "1" "alice got bob's message"
sc_ok alice send bob "and back"
receive_json bob "$E2E_DIR/b.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b.json" "and back")" "1" "bob got alice's message"

log "ok"
