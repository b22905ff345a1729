#!/usr/bin/env bash
# The bot scenario of issue 10: one `sotto daemon` holding three accounts,
# three scripted bots talking JSON-RPC to it (each sends to the next one
# and subscribes to its own account's events, acknowledging what it
# handled), while the server is restarted. Checked at the end: every send
# was answered (sent, or queued with exit 3 and delivered later), every
# message arrived (0 lost), no message arrived under two event ids (0 shown
# twice; a redelivered event keeps its id and is dropped by it).
#
#   BOT_MESSAGES   messages in all (default 1000)
#   BOT_RESTARTS   server restarts while they are sent (default 1)
# The issue's full run (10,000 messages, 2 restarts) is the ctest e2e_daemon_bot_10000
# (label slow), or by hand: BOT_MESSAGES=10000 BOT_RESTARTS=2 bash tests/e2e/e2e_daemon_bot.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

BOT_MESSAGES=${BOT_MESSAGES:-1000}
BOT_RESTARTS=${BOT_RESTARTS:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_RUNTIME_DIR="$E2E_DIR/run"
mkdir -p "$XDG_RUNTIME_DIR"
SOCK="$XDG_RUNTIME_DIR/sotto/daemon.sock"
BOTS_HOME="$E2E_DIR/home/bots"

# the per-device send limit (600/min) would make this a test of waiting;
# limits are e2e_server_faults.sh's subject
LIMITS=(--set rate_send_per_min=1000000 --set rate_send_burst=1000000
    --set rate_pair_per_min=1000000 --set rate_pair_burst=1000000
    --set rate_bundle_per_min=1000000 --set rate_bundle_burst=1000000)
server_start "${LIMITS[@]}"
for a in bot1 bot2 bot3; do
    XDG_DATA_HOME="$BOTS_HOME" timeout 30 "$SOTTO" --account "$a" --server "$SERVER_URL" \
        --pin "$SERVER_FP" register "$a" >/dev/null || fail "register $a"
done

E2E_DAEMON_TIMEOUT=1500 daemon_start bots # XDG_DATA_HOME=$BOTS_HOME

log "three bots exchange $BOT_MESSAGES messages; the server restarts $BOT_RESTARTS time(s)"
SOCK="$SOCK" N="$BOT_MESSAGES" RESTARTS="$BOT_RESTARTS" OUT="$E2E_DIR" python3 - "$HERE" \
    >"$E2E_DIR/bots.out" 2>&1 <<'PY' &
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc

N, R, OUT = int(os.environ["N"]), int(os.environ["RESTARTS"]), os.environ["OUT"]
names = ["bot1", "bot2", "bot3"]
conns = {}
seen = {b: {} for b in names}      # event_id -> body
dups = {b: 0 for b in names}       # events seen again under the same id (redelivered)
acks_pending = {b: [] for b in names}
answers = {"sent": 0, "queued": 0, "other": []}

def connect(b):
    r = Rpc(os.environ["SOCK"], timeout=120)
    a = r.call("subscribeReceive", {"account": b, "subscriber": b + "-bot"})
    assert "result" in a, a
    conns[b] = r

def drain(b, r):
    for ev in r.events:
        p = ev["params"]
        if p["event"]["type"] != "message":
            acks_pending[b].append(p["event_id"])
            continue
        if p["event_id"] in seen[b]:
            dups[b] += 1
        else:
            seen[b][p["event_id"]] = p["event"]["body"]
        acks_pending[b].append(p["event_id"])
    r.events.clear()
    if len(acks_pending[b]) >= 20:
        ack(b)

def ack(b):
    if acks_pending[b]:
        a = conns[b].call("ack", {"account": b, "subscriber": b + "-bot", "eventIds": acks_pending[b]})
        assert "result" in a, a
        acks_pending[b] = []
        drain(b, conns[b])

def poll_all(t=0.0):
    for b in names:
        r = conns[b]
        while True:
            m = r.read_line(t)
            if m is None:
                break
            r.events.append(m)
        drain(b, r)

for b in names:
    connect(b)
marks = [N * (k + 1) // (R + 1) for k in range(R)]
t0 = time.time()
for i in range(N):
    if i in marks:
        k = marks.index(i)
        open(os.path.join(OUT, "restart-%d" % k), "w").close()
        # the bots go on sending while the server goes down and comes back
    if i == N // 3:
        # one bot loses its own connection: it comes back by subscribing again
        conns["bot1"].close()
        connect("bot1")
    frm, to = names[i % 3], names[(i + 1) % 3]
    body = "m%d %s>%s" % (i, frm, to)
    a = conns[frm].call("send", {"account": frm, "recipient": to, "message": body}, timeout=120)
    if "result" in a:
        answers["sent"] += 1
    elif a.get("error", {}).get("code") == 3:
        answers["queued"] += 1   # queued: the daemon sends it once the server is back
    else:
        answers["other"].append(a)
    drain(frm, conns[frm])
    if i % 10 == 0:
        poll_all(0.0)
send_s = time.time() - t0
expected = {b: set() for b in names}
for i in range(N):
    expected[names[(i + 1) % 3]].add("m%d %s>%s" % (i, names[i % 3], names[(i + 1) % 3]))
deadline = time.time() + 180
while time.time() < deadline:
    poll_all(0.2)
    if all(expected[b] <= set(seen[b].values()) for b in names):
        break
    # queued messages go out with the daemon's next flush: ask for one
    for b in names:
        conns[b].call("flush", {"account": b}, timeout=120)
for b in names:
    ack(b)
res = {
    "messages": N, "restarts": R, "send_seconds": round(send_s, 1),
    "answered": answers["sent"] + answers["queued"], "sent": answers["sent"],
    "queued": answers["queued"], "other_answers": answers["other"][:3],
    "lost": sum(len(expected[b] - set(seen[b].values())) for b in names),
    "shown_twice": sum(len(seen[b]) - len(set(seen[b].values())) for b in names),
    "unexpected": sum(len(set(seen[b].values()) - expected[b]) for b in names),
    "redelivered_dropped": sum(dups.values()),
    "total_seconds": round(time.time() - t0, 1),
}
json.dump(res, open(os.path.join(OUT, "bots.json"), "w"))
print(json.dumps(res))
PY
BOTS_PID=$!
E2E_BG_PIDS+=("$BOTS_PID")
for k in $(seq 0 $((BOT_RESTARTS - 1))); do
    while [ ! -e "$E2E_DIR/restart-$k" ]; do
        kill -0 "$BOTS_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -e "$E2E_DIR/restart-$k" ] || break
    log "server restart $((k + 1))"
    server_stop_ok
    sleep 1
    server_restart "${LIMITS[@]}"
done
RC=0
wait "$BOTS_PID" || RC=$?
cat "$E2E_DIR/bots.out"
assert_eq "$RC" "0" "the bots' script"
[ -s "$E2E_DIR/bots.json" ] || fail "no result"
res="$E2E_DIR/bots.json"
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$res" "$1"; }
assert_eq "$(jget answered)" "$BOT_MESSAGES" "sends answered (sent or queued)"
assert_eq "$(jget lost)" "0" "messages lost"
assert_eq "$(jget shown_twice)" "0" "messages shown twice (under two event ids)"
assert_eq "$(jget unexpected)" "0" "messages nobody sent"
assert_eq "$(jget other_answers)" "[]" "sends that failed"
grep -q "is in use" "$E2E_DIR/daemon.err" && fail "daemon: $(cat "$E2E_DIR/daemon.err")"
bg_stop "$DAEMON_PID"
assert_eq "$RC" "0" "daemon exit code"
log "ok: $(cat "$res")"
