#!/usr/bin/env bash
# Everyday messaging (issue 11) tried as a new user and as a bot author coming
# from signal-cli, with docs/cli.md and docs/rpc.md only; each check was found
# failing, then fixed:
#  - `react --remove` says what it did ("removed your reaction from alice's
#    message TS in bob"), not "removed reaction  on ..." (an empty emoji);
#  - a timer change shows which conversation it is about: "@ GROUP" for a
#    group (a 1:1 change and a group change read the same before), "with
#    NAME" for our own change copied from another device;
#  - the daemon takes signal-cli's own parameter names: `sendReceipt` with
#    `targetTimestamp` (a list, or one number) and `send` with `mention`
#    (a list of "start:length:name"), as well as Sotto's `targetTimestamps`
#    and `mentions` -- before, the first was refused (-32602) and the second
#    silently ignored;
#  - `block`/`unblock` say when nothing changed ("(already blocked)", "(was
#    not blocked)"), as `--json` does with "changed".
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

server_start
register alice
register bob
register carol

log "1:1 conversation accepted both ways, and a group"
sc_ok alice send bob "hi bob"
sc_ok bob send alice "hi alice"
receive_json bob "$E2E_DIR/b0.json"
receive_json alice "$E2E_DIR/a0.json"
sc_ok alice --json send bob "react to this"
T1=$(jfield timestamp <"$E2E_DIR/last.out")
receive_json bob "$E2E_DIR/b1.json"

log "react --remove says what it did"
sc_ok bob react alice --target-author alice --target-timestamp "$T1" "👍"
assert_eq "$(sed 's/(timestamp [0-9]*)/(timestamp T)/' "$E2E_DIR/last.out")" \
    "reacted 👍 on alice's message $T1 in alice (timestamp T)" "react output"
sc_ok bob react alice --target-author alice --target-timestamp "$T1" --remove
assert_eq "$(sed 's/(timestamp [0-9]*)/(timestamp T)/' "$E2E_DIR/last.out")" \
    "removed your reaction from alice's message $T1 in alice (timestamp T)" "react --remove output"

log "a timer change names its conversation"
sc_ok alice group create team bob carol
sc_ok bob receive
sc_ok bob accept --group team
sc_ok alice timer --group team 5m
sc_ok alice timer bob 1h
sc_ok bob receive
grep -q -F "alice set disappearing messages to 300 s @ team" "$E2E_DIR/last.out" ||
    fail "group timer line: $(cat "$E2E_DIR/last.out")"
grep -q -x -E "\[[^]]*\] alice set disappearing messages to 3600 s" "$E2E_DIR/last.out" ||
    fail "1:1 timer line: $(cat "$E2E_DIR/last.out")"
sc_ok alice timer bob off
sc_ok alice timer --group team off
sc_ok bob receive

log "the daemon takes signal-cli's parameter names (targetTimestamp, mention)"
sc_ok alice --json send bob "read me"
T2=$(jfield timestamp <"$E2E_DIR/last.out")
sc_ok alice --json send bob "and me"
T3=$(jfield timestamp <"$E2E_DIR/last.out")
export XDG_RUNTIME_DIR="$E2E_DIR/run"
mkdir -p "$XDG_RUNTIME_DIR"
SOCK="$XDG_RUNTIME_DIR/sotto/daemon.sock"
XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 120 "$SOTTO" daemon --account bob \
    >"$E2E_DIR/daemon.out" 2>"$E2E_DIR/daemon.err" </dev/null &
DAEMON_PID=$!
E2E_BG_PIDS+=("$DAEMON_PID")
for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && break
    sleep 0.1
done
[ -S "$SOCK" ] || fail "no socket: $(cat "$E2E_DIR/daemon.err")"
SOCK="$SOCK" T2="$T2" T3="$T3" python3 - "$HERE" <<'PY' || fail "signal-cli parameter names"
import os, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check

r = Rpc(os.environ["SOCK"])
t2, t3 = int(os.environ["T2"]), int(os.environ["T3"])
# wait until the daemon stored both messages
for _ in range(100):
    h = r.call("history", {"recipient": "alice"}).get("result", [])
    if {t2, t3} <= {e.get("timestamp") for e in h}:
        break
    time.sleep(0.1)
m = r.call("sendReceipt", {"recipient": "alice", "targetTimestamp": [t2], "type": "read"})
check(m.get("result", {}).get("marked") == 1, "sendReceipt targetTimestamp list: %r" % m)
m = r.call("sendReceipt", {"recipient": "alice", "targetTimestamp": t3})
check(m.get("result", {}).get("marked") == 1, "sendReceipt targetTimestamp number: %r" % m)
m = r.call("send", {"groupId": "team", "message": "hi carol", "mention": ["3:5:carol"]})
check("result" in m, "send with mention: %r" % m)
PY
sleep 1
sc_ok alice --json receive
python3 - "$E2E_DIR/last.out" "$T2" "$T3" <<'PY' || fail "alice's events: $(cat "$E2E_DIR/last.out")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
read = set()
for e in evs:
    if e["type"] == "receipt" and e["from"] == "bob" and e.get("receipt_type") == "read":
        read.update(e["timestamps"])
assert {int(sys.argv[2]), int(sys.argv[3])} <= read, "read receipts: %r" % read
m = [e for e in evs if e["type"] == "message" and e["body"] == "hi carol"]
assert len(m) == 1 and m[0].get("mentions") == [{"name": "carol", "start": 3, "length": 5}], m
PY

log "block/unblock say when nothing changed"
sc_ok alice block carol
assert_eq "$(cat "$E2E_DIR/last.out")" "blocked carol" "block"
sc_ok alice block carol
assert_eq "$(cat "$E2E_DIR/last.out")" "blocked carol (already blocked)" "block again"
sc_ok alice unblock carol
assert_eq "$(cat "$E2E_DIR/last.out")" "unblocked carol" "unblock"
sc_ok alice unblock carol
assert_eq "$(cat "$E2E_DIR/last.out")" "unblocked carol (was not blocked)" "unblock again"

# SIGTERM through `timeout` (the cleanup's SIGKILL of `timeout` would leave
# the daemon running)
bg_stop "$DAEMON_PID"
assert_rc 0 "the daemon's exit code"
