#!/usr/bin/env bash
# The recipient is offline, then comes online: messages wait in the
# server's queue and arrive once, in order. Then the server itself is down:
# the sender's message stays queued locally (exit 3) and goes out with the
# next command once the server is back; a listening client reconnects.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

log "bob is offline; alice sends three messages"
for i in 1 2 3; do
    sc_ok alice send bob "while you were away $i"
done
n=$(server_sql "SELECT count(*) FROM envelopes")
assert_eq "$n" "3" "envelopes queued on the server for bob"

log "bob comes online with listen: the queue arrives, then a live message"
sc_bg bob "$E2E_DIR/listen1.json" --json listen
listen_pid=$BG_PID
wait_for "$E2E_DIR/listen1.json" 15 "while you were away 3"
sc_ok alice send bob "live while you listen"
wait_for "$E2E_DIR/listen1.json" 15 "live while you listen"
bg_stop "$listen_pid"
assert_eq "$RC" "0" "listen exit code after SIGTERM"
events message "$E2E_DIR/listen1.json" | jfield body >"$E2E_DIR/listen1.bodies"
printf '%s\n' "while you were away 1" "while you were away 2" "while you were away 3" \
    "live while you listen" >"$E2E_DIR/expected1"
cmp -s "$E2E_DIR/listen1.bodies" "$E2E_DIR/expected1" ||
    fail "listen output: expected $(cat "$E2E_DIR/expected1"), got $(cat "$E2E_DIR/listen1.bodies")"
# acked: nothing left on the server
for i in $(seq 1 20); do
    [ "$(server_sql "SELECT count(*) FROM envelopes")" = 0 ] && break
    sleep 0.1
done
assert_eq "$(server_sql "SELECT count(*) FROM envelopes")" "0" "envelopes left after listen acked"

log "the server goes down: alice's send exits 3 and stays queued"
server_stop_ok
sc alice send bob "sent while the server was down"
assert_rc 3 "send with the server down"
grep -q -i "queued" "$E2E_DIR/last.err" || fail "send did not say the message is queued: $(cat "$E2E_DIR/last.err")"

log "the server is back: alice's flush sends it, bob receives it once"
server_restart
sc_ok alice --json flush
assert_eq "$(jfield queued <"$E2E_DIR/last.out")" "0" "messages left queued after flush"
receive_json bob "$E2E_DIR/r2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/r2.json" "sent while the server was down")" "1" \
    "queued message delivered once"
sc_ok alice flush
receive_json bob "$E2E_DIR/r3.json"
assert_eq "$(events message "$E2E_DIR/r3.json" | wc -l)" "0" "nothing delivered a second time"

log "a listening client survives a server restart"
sc_bg bob "$E2E_DIR/listen2.json" --json listen
listen_pid=$BG_PID
sc_ok alice send bob "before the restart"
wait_for "$E2E_DIR/listen2.json" 15 "before the restart"
server_restart
sc_ok alice send bob "after the restart"
wait_for "$E2E_DIR/listen2.json" 40 "after the restart"
bg_stop "$listen_pid"
assert_eq "$RC" "0" "listen exit code after SIGTERM"
assert_eq "$(count_message_bodies "$E2E_DIR/listen2.json" "after the restart")" "1" \
    "message after restart delivered once"
assert_eq "$(count_message_bodies "$E2E_DIR/listen2.json" "before the restart")" "1" \
    "message before restart delivered once"

log "ok"
