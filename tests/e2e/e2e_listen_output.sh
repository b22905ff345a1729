#!/usr/bin/env bash
# A `listen` whose output goes away (a bot that died, `| head -n 1`) must
# not take messages it cannot show: it stops at the first event it cannot
# write, and the next receive shows every message not yet shown, once.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

log "bob listens through a pipe that closes after the first line"
mkdir -p "$E2E_DIR/home/bob"
(XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 60 "$SOTTO" --account bob --json listen \
    2>"$E2E_DIR/listen.err" </dev/null | head -n 1 >"$E2E_DIR/first.json"
 echo "${PIPESTATUS[0]}" >"$E2E_DIR/listen.rc") &
E2E_BG_PIDS+=($!)
sleep 1
for t in first second third; do
    sc_ok alice send bob "$t"
    sleep 0.3
done
for _ in $(seq 1 100); do
    [ -s "$E2E_DIR/listen.rc" ] && break
    sleep 0.1
done
[ -s "$E2E_DIR/listen.rc" ] || fail "listen kept running with its output gone"
assert_eq "$(cat "$E2E_DIR/listen.rc")" "1" "listen's exit code once its output is gone"
grep -q "cannot write to standard output" "$E2E_DIR/listen.err" ||
    fail "listen did not say why it stopped: $(cat "$E2E_DIR/listen.err")"
assert_eq "$(count_message_bodies "$E2E_DIR/first.json" "first")" "1" "the line that got through"

log "the next receive shows what the listen could not, each once"
receive_json bob "$E2E_DIR/r.json"
for t in second third; do
    assert_eq "$(count_message_bodies "$E2E_DIR/r.json" "$t")" "1" "'$t' shown by the next receive"
done
assert_eq "$(count_message_bodies "$E2E_DIR/r.json" "first")" "0" "'first' shown again"
receive_json bob "$E2E_DIR/r2.json"
assert_eq "$(events message "$E2E_DIR/r2.json" | wc -l | tr -d ' ')" "0" "messages shown a third time"
log "ok"
