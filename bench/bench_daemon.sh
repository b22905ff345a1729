#!/usr/bin/env bash
# Benchmark (issue 10): through `sotto daemon` next to one-shot CLI
# processes, in one run, against a local sottod (tests/e2e/lib.sh):
#  - send round trip: from the request to the answer "sent" (the server has
#    the message), p50 and p99; the CLI row is one `sotto send` process;
#  - events per second to a subscriber: K messages waiting on the server,
#    the daemon's subscriber gets them all (decrypt, store, notify); the CLI
#    row is one `sotto receive` process draining K.
#
#   bash bench/bench_daemon.sh BUILD_DIR   (scripts/bench.sh runs it)
#   BENCH_SENDS (default 200), BENCH_EVENTS (default 500)
# Prints `bench daemon_<what> ...` lines and a table.
BUILD=${1:-build}
export SOTTOD="$BUILD/server/sottod" SOTTO="$BUILD/client/sotto"
BENCH_SENDS=${BENCH_SENDS:-200}
BENCH_EVENTS=${BENCH_EVENTS:-500}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../tests/e2e/lib.sh
. "$HERE/../tests/e2e/lib.sh"
export XDG_RUNTIME_DIR="$E2E_DIR/run"
mkdir -p "$XDG_RUNTIME_DIR"

# the per-device send and bundle limits are for the internet, not for a benchmark
server_start --set rate_send_per_min=1000000 --set rate_send_burst=1000000 \
    --set rate_pair_per_min=1000000 --set rate_pair_burst=1000000 \
    --set rate_bundle_per_min=1000000 --set rate_bundle_burst=1000000 >/dev/null
register alice >/dev/null
register bob >/dev/null
sc_ok alice send bob "hello"
sc_ok bob receive

# daemon_start WHO SOCKET: a daemon for WHO's data directory
daemon_start() {
    XDG_DATA_HOME="$E2E_DIR/home/$1" timeout -k 2 600 "$SOTTO" daemon --socket "$2" \
        >/dev/null 2>"$E2E_DIR/daemon-$1.err" </dev/null &
    DPID=$!
    E2E_BG_PIDS+=("$DPID")
    for _ in $(seq 1 100); do
        [ -S "$2" ] && return 0
        sleep 0.05
    done
    fail "daemon for $1 did not start: $(cat "$E2E_DIR/daemon-$1.err")"
}

log "one-shot CLI: $BENCH_SENDS sends" >&2
python3 - "$SOTTO" "$E2E_DIR/home/alice" "$BENCH_SENDS" >"$E2E_DIR/cli_send.json" <<'PY'
import json, os, subprocess, sys, time
sotto, home, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = dict(os.environ, XDG_DATA_HOME=home)
lat = []
for i in range(n):
    t = time.perf_counter()
    subprocess.run([sotto, "--account", "alice", "send", "bob", "cli %d" % i], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    lat.append(time.perf_counter() - t)
print(json.dumps(lat))
PY
log "one-shot CLI: receive $BENCH_SENDS" >&2
t0=$(date +%s.%N)
sc_ok bob receive
t1=$(date +%s.%N)
cli_recv_s=$(python3 -c "print($t1 - $t0)")

log "daemon: $BENCH_SENDS sends" >&2
daemon_start alice "$E2E_DIR/a.sock"
A_PID=$DPID
python3 - "$HERE/../tests/e2e" "$E2E_DIR/a.sock" "$BENCH_SENDS" >"$E2E_DIR/d_send.json" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc
r, n = Rpc(sys.argv[2]), int(sys.argv[3])
r.call("send", {"recipient": "bob", "message": "warm up"})
lat = []
for i in range(n):
    t = time.perf_counter()
    a = r.call("send", {"recipient": "bob", "message": "daemon %d" % i})
    lat.append(time.perf_counter() - t)
    assert "result" in a, a
print(json.dumps(lat))
PY
sc_ok bob receive

log "daemon: $BENCH_EVENTS events to a subscriber (and the CLI row)" >&2
python3 - "$HERE/../tests/e2e" "$E2E_DIR/a.sock" "$BENCH_EVENTS" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc
r, n = Rpc(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    assert "result" in r.call("send", {"recipient": "bob", "message": "ev %d" % i})
PY
t0=$(date +%s.%N)
sc_ok bob receive
t1=$(date +%s.%N)
cli_events_s=$(python3 -c "print($t1 - $t0)")
python3 - "$HERE/../tests/e2e" "$E2E_DIR/a.sock" "$BENCH_EVENTS" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc
r, n = Rpc(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    assert "result" in r.call("send", {"recipient": "bob", "message": "ev2 %d" % i})
PY
daemon_start bob "$E2E_DIR/b.sock"
python3 - "$HERE/../tests/e2e" "$E2E_DIR/b.sock" "$BENCH_EVENTS" >"$E2E_DIR/d_events.json" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc
r, n = Rpc(sys.argv[2], timeout=300), int(sys.argv[3])
t = time.perf_counter()
r.call("subscribeReceive", {"subscriber": "bench"})
got = sum(1 for e in r.events if e["params"]["event"]["type"] == "message")
while got < n and time.perf_counter() - t < 300:
    r.wait_events(len(r.events) + 1, 5)
    got = sum(1 for e in r.events if e["params"]["event"]["type"] == "message")
print(json.dumps({"seconds": time.perf_counter() - t, "events": got}))
PY

python3 - "$E2E_DIR" "$cli_recv_s" "$cli_events_s" "$BENCH_SENDS" "$BENCH_EVENTS" <<'PY'
import json, sys
d, cli_recv_s, cli_ev_s, ns, ne = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))] * 1000
cli = json.load(open(d + "/cli_send.json")); dm = json.load(open(d + "/d_send.json"))
ev = json.load(open(d + "/d_events.json"))
rows = [
    ("send round trip p50 (ms)", pct(cli, 0.5), pct(dm, 0.5)),
    ("send round trip p99 (ms)", pct(cli, 0.99), pct(dm, 0.99)),
    ("events/s to a receiver", ne / cli_ev_s, ev["events"] / ev["seconds"]),
]
print("bench daemon_send_rtt_ms p50=%.1f p99=%.1f cli_p50=%.1f cli_p99=%.1f n=%d" %
      (pct(dm, 0.5), pct(dm, 0.99), pct(cli, 0.5), pct(cli, 0.99), ns))
print("bench daemon_events_per_s daemon=%.0f cli_receive=%.0f n=%d" %
      (ev["events"] / ev["seconds"], ne / cli_ev_s, ne))
print()
print("| %-28s | %14s | %14s |" % ("", "one-shot CLI", "sotto daemon"))
print("|%s|%s|%s|" % ("-" * 30, "-" * 16, "-" * 16))
for name, a, b in rows:
    print("| %-28s | %14.1f | %14.1f |" % (name, a, b))
PY
