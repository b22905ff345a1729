#!/usr/bin/env bash
# One process per account (docs/cli.md "One process per account"): while a
# `listen` holds carol's connection, a second process for carol that would
# connect does not take the connection from it (before: the server kept the
# newest connection and the two kicked each other off); it says who holds
# the account and exits 10. Local-only commands still run. The lock goes
# with its process, also when it is killed.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register carol
register bob
sc_ok bob send carol "hello carol"
sc_ok carol receive

log "carol listens"
sc_bg carol "$E2E_DIR/listen.out" --json listen
LISTEN_TIMEOUT_PID=$BG_PID
lockf="$E2E_DIR/home/carol/sotto/carol/lock"
for _ in $(seq 1 100); do
    grep -q "sotto listen" "$lockf" 2>/dev/null && break
    sleep 0.1
done
grep -q "sotto listen" "$lockf" 2>/dev/null || fail "listen wrote no lock file"
listen_pid=$(pgrep -P "$LISTEN_TIMEOUT_PID" | head -n 1)
[ -n "$listen_pid" ] || fail "no listen process"
sleep 1

log "a send from carol at the same time: refused, exit 10, names the holder"
for i in 1 2 3; do
    sc carol send bob "from a second process $i"
    assert_rc 10 "send while listen holds the account"
    grep -q -F "account carol is in use by pid $listen_pid (sotto listen)" "$E2E_DIR/last.err" ||
        fail "send did not name the holder: $(cat "$E2E_DIR/last.err")"
done
sc carol --json send bob "json too"
assert_rc 10 "send --json while listen holds the account"
assert_eq "$(jfield code <"$E2E_DIR/last.out")" "account_in_use" "--json error code"
assert_eq "$(jfield exit <"$E2E_DIR/last.out")" "10" "--json error exit"

log "local-only commands run next to it"
sc_ok carol history bob
grep -q "hello carol" "$E2E_DIR/last.out" || fail "history next to listen"
sc_ok carol contacts
sc_ok carol group list

log "the listen was never kicked off: it gets bob's messages, each once"
for i in 1 2 3 4 5; do
    sc_ok bob send carol "m$i"
done
for i in 1 2 3 4 5; do
    wait_for "$E2E_DIR/listen.out" 20 "\"body\":\"m$i\""
done
for i in 1 2 3 4 5; do
    assert_eq "$(count_message_bodies "$E2E_DIR/listen.out" "m$i")" "1" "m$i shown once"
done
sc_ok bob receive
assert_eq "$(grep -c "from a second process" "$E2E_DIR/last.out")" "0" "refused sends reached bob"

log "killed holder: the lock goes with it"
kill -KILL "$listen_pid"
wait "$LISTEN_TIMEOUT_PID" 2>/dev/null || true
sc_ok carol send bob "after the listen"
sc_ok bob receive
grep -q "after the listen" "$E2E_DIR/last.out" || fail "send after the holder died"
log "ok"
