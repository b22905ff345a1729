#!/usr/bin/env bash
# `sotto receive` and `sotto listen` while `sotto daemon` holds the account
# (docs/rpc.md "The CLI through the daemon"): a real server, a real daemon
# for bob. The CLI subscribes as "cli" (one shared cursor): alice's three
# messages are printed by bob's first receive exactly once and not by the
# next; a `listen --json` gets a fourth one live, as the same JSON object a
# bot subscriber gets; the bot (another name, its own cursor) still gets all
# four; an event that could not be written is shown by the next receive;
# `listen` says so and exits 3 when the daemon goes away; what a receive
# without the daemon printed is not printed again through it. Before this
# change receive and listen exited 10 ("account bob is in use").
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_RUNTIME_DIR="$E2E_DIR/run"
mkdir -p "$XDG_RUNTIME_DIR"
SOCK="$XDG_RUNTIME_DIR/sotto/daemon.sock"
LINE_RE='^\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\] alice: '

server_start
register alice
register bob
sc_ok bob accept alice # issue 11: not a message request (lines checked exactly)

log "without the daemon: the line format receive prints"
sc_ok alice send bob "m0"
sc_ok bob receive
grep -Eq "${LINE_RE}m0  #[0-9]+\$" "$E2E_DIR/last.out" || fail "direct receive: $(cat "$E2E_DIR/last.out")"

start_daemon() {
    XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 200 "$SOTTO" daemon \
        >>"$E2E_DIR/daemon.out" 2>>"$E2E_DIR/daemon.err" </dev/null &
    DAEMON_PID=$!
    E2E_BG_PIDS+=("$DAEMON_PID")
    for _ in $(seq 1 100); do
        [ -S "$SOCK" ] && return 0
        sleep 0.1
    done
    fail "no socket: $(cat "$E2E_DIR/daemon.err")"
}

# bob's daemon has stored the message with this body (history only reads
# the store: it runs next to the daemon)
wait_stored() {
    for _ in $(seq 1 100); do
        sc bob history alice
        grep -q -F ": $1" "$E2E_DIR/last.out" && return 0
        sleep 0.1
    done
    fail "the daemon did not store [$1]"
}

log "bob's daemon runs; alice sends three messages"
start_daemon
for i in 1 2 3; do
    sc_ok alice send bob "m$i"
done
wait_stored m3

log "bob's receive (no daemon option) prints the three, each once, in order"
sc bob receive
assert_rc 0 "receive through the daemon"
assert_eq "$(wc -l <"$E2E_DIR/last.out" | tr -d ' ')" "3" "three lines: $(cat "$E2E_DIR/last.out")"
for i in 1 2 3; do
    assert_eq "$(sed -n "${i}p" "$E2E_DIR/last.out" | grep -Ec "${LINE_RE}m$i  #[0-9]+\$")" "1" "line $i"
done
grep -q "in use" "$E2E_DIR/last.err" && fail "receive was refused: $(cat "$E2E_DIR/last.err")"

log "a second receive prints nothing new"
sc bob receive
assert_rc 0 "second receive"
assert_eq "$(cat "$E2E_DIR/last.out")" "" "second receive output"
sc bob --json receive
assert_rc 0 "receive --json, nothing new"
assert_eq "$(cat "$E2E_DIR/last.out")" "" "receive --json output"

log "listen --json gets a fourth message live"
sc_bg bob "$E2E_DIR/listen.out" --json listen
LISTEN_PID=$BG_PID
sleep 1
sc_ok alice send bob "m4"
wait_for "$E2E_DIR/listen.out" 20 '"body":"m4"'
bg_stop "$LISTEN_PID"
assert_eq "$RC" "0" "listen exit code on SIGTERM"
assert_eq "$(wc -l <"$E2E_DIR/listen.out" | tr -d ' ')" "1" "listen printed only m4"
sc bob receive
assert_rc 0 "receive after listen"
assert_eq "$(cat "$E2E_DIR/last.out")" "" "m4 was acknowledged by listen"

log "a bot subscriber with another name gets all four, the same objects"
SOCK="$SOCK" LISTEN_OUT="$E2E_DIR/listen.out" python3 - "$HERE" <<'PY' || fail "bot subscriber"
import json, os, sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check

r = Rpc(os.environ["SOCK"])
a = r.call("subscribeReceive", {"account": "bob", "subscriber": "bot"})["result"]
check(a["redelivered"] == 4, "bot redelivered: %r" % a)
r.wait_events(4, 10)
bodies = [e["params"]["event"]["body"] for e in r.events]
check(bodies == ["m1", "m2", "m3", "m4"], "bot bodies: %r" % bodies)
live = json.loads(open(os.environ["LISTEN_OUT"]).readline())
check(r.events[3]["params"]["event"] == live, "listen --json object %r vs %r" %
      (live, r.events[3]["params"]["event"]))
PY

log "an event that could not be written is shown by the next receive"
sc_ok alice send bob "m5"
wait_stored m5
RC=0
XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 30 "$SOTTO" --account bob receive \
    >/dev/full 2>"$E2E_DIR/full.err" </dev/null || RC=$?
assert_eq "$RC" "1" "receive to a full stdout"
grep -q "cannot write to standard output" "$E2E_DIR/full.err" || fail "full: $(cat "$E2E_DIR/full.err")"
sc bob --json receive
assert_rc 0 "receive after the failed write"
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" m5)" "1" "m5 shown by the next receive"
assert_eq "$(wc -l <"$E2E_DIR/last.out" | tr -d ' ')" "1" "only m5"

log "listen says so and exits 3 when the daemon goes away"
sc_bg bob "$E2E_DIR/listen2.out" listen
LISTEN_PID=$BG_PID
sleep 1
bg_stop "$DAEMON_PID"
assert_eq "$RC" "0" "daemon exit code"
RC=0
wait "$LISTEN_PID" || RC=$?
assert_eq "$RC" "3" "listen exit code when the daemon stops"
grep -q "the daemon stopped" "$E2E_DIR/listen2.out.err" ||
    fail "listen stderr: $(cat "$E2E_DIR/listen2.out.err")"

log "without the daemon, receive connects by itself again"
sc_ok alice send bob "m6"
sc_ok bob receive
grep -Eq "${LINE_RE}m6  #[0-9]+\$" "$E2E_DIR/last.out" || fail "direct receive: $(cat "$E2E_DIR/last.out")"

log "the daemon again: what receive printed without it is not printed again"
start_daemon
sc_ok alice send bob "m7"
wait_stored m7
sc bob receive
assert_rc 0 "receive through the restarted daemon"
assert_eq "$(wc -l <"$E2E_DIR/last.out" | tr -d ' ')" "1" "only m7: $(cat "$E2E_DIR/last.out")"
grep -Eq "${LINE_RE}m7  #[0-9]+\$" "$E2E_DIR/last.out" || fail "m7: $(cat "$E2E_DIR/last.out")"
bg_stop "$DAEMON_PID"
log "ok"
