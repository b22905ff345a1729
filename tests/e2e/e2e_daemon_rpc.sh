#!/usr/bin/env bash
# `sotto daemon` (docs/rpc.md) against a real server over its real Unix
# socket: JSON-RPC 2.0 conformance (single calls, batches, notifications,
# parse errors after which it carries on, -32600/-32601/-32602, command
# errors with the CLI's exit code), two accounts in one daemon, events with
# event ids to several subscribers, ack and redelivery after a reconnect,
# one daemon per socket and per account, and the CLI running through the
# daemon with the same output and exit codes as without it. Limits: acks of
# events that do not exist yet, 100,000 pipelined requests, a client that
# never reads; and the echo bots of docs/rpc.md and README.md, run as written.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_RUNTIME_DIR="$E2E_DIR/run"
mkdir -p "$XDG_RUNTIME_DIR"
SOCK="$XDG_RUNTIME_DIR/sotto/daemon.sock"

server_start
register carol
register bob
# a second account in carol's data directory: the daemon serves both
XDG_DATA_HOME="$E2E_DIR/home/carol" timeout 30 "$SOTTO" --account erin --server "$SERVER_URL" \
    --pin "$SERVER_FP" register erin >/dev/null || fail "register erin"
sc_ok bob send carol "before the daemon"

log "a command's output without the daemon (compared below)"
sc carol send nobody_here "x"
assert_rc 6 "send to an unknown user without the daemon"
cp "$E2E_DIR/last.err" "$E2E_DIR/direct.err"
cp "$E2E_DIR/last.out" "$E2E_DIR/direct.out"
sc carol --json send nobody_here "x"
cp "$E2E_DIR/last.out" "$E2E_DIR/direct-json.out"

log "the daemon starts: private directory and socket"
daemon_start carol
assert_eq "$(stat -c %a "$XDG_RUNTIME_DIR/sotto")" "700" "socket directory mode"
assert_eq "$(stat -c %a "$SOCK")" "600" "socket mode"
grep -q "serving carol erin" "$E2E_DIR/daemon.err" || fail "daemon: $(cat "$E2E_DIR/daemon.err")"

log "a second daemon is refused (the socket, then the accounts)"
RC=0
XDG_DATA_HOME="$E2E_DIR/home/carol" timeout 20 "$SOTTO" daemon --socket "$E2E_DIR/other.sock" \
    >/dev/null 2>"$E2E_DIR/d2.err" </dev/null || RC=$?
assert_eq "$RC" "10" "second daemon for the same accounts"
grep -q "account carol is in use by pid [0-9]* (sotto daemon)" "$E2E_DIR/d2.err" ||
    fail "second daemon: $(cat "$E2E_DIR/d2.err")"
RC=0
XDG_DATA_HOME="$E2E_DIR/home/bob" timeout 20 "$SOTTO" daemon >/dev/null 2>"$E2E_DIR/d3.err" \
    </dev/null || RC=$?
assert_eq "$RC" "10" "a daemon for other accounts on the same socket"
grep -q "another daemon serves" "$E2E_DIR/d3.err" || fail "d3: $(cat "$E2E_DIR/d3.err")"
# --socket naming a file that is not a socket: refused, the file kept (before, it was
# deleted and replaced by the socket)
printf 'keep me\n' >"$E2E_DIR/not-a-socket"
RC=0
XDG_DATA_HOME="$E2E_DIR/home/bob" timeout 20 "$SOTTO" daemon --socket "$E2E_DIR/not-a-socket" \
    >/dev/null 2>"$E2E_DIR/d4.err" </dev/null || RC=$?
assert_eq "$RC" "1" "a daemon on a path that is not a socket"
assert_eq "$(cat "$E2E_DIR/not-a-socket")" "keep me" "the file at --socket"
grep -q "is not a socket" "$E2E_DIR/d4.err" || fail "d4: $(cat "$E2E_DIR/d4.err")"

log "JSON-RPC conformance"
SOCK="$SOCK" SOTTO="$SOTTO" HOME_BOB="$E2E_DIR/home/bob" python3 - "$HERE" <<'PY' || fail "conformance"
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check

r = Rpc(os.environ["SOCK"])
v = r.call("version")
check(v["result"]["version"] == "0.1.0" and v["jsonrpc"] == "2.0", "version: %r" % v)
acc = r.call("listAccounts")["result"]
check([a["account"] for a in acc] == ["carol", "erin"], "listAccounts: %r" % acc)
e = r.call("listContacts")
check(e["error"]["code"] == -32602 and "account" in e["error"]["message"], "no account: %r" % e)

# malformed JSON: -32700 with id null, and the connection carries on
r.send_raw('{"jsonrpc":"2.0","id":9,"method":\n')
m = r.read_response()
check(m == {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None},
      "parse error: %r" % m)
r.send_raw(b'\xff\xfe garbage\n')
check(r.read_response()["error"]["code"] == -32700, "garbage bytes")
check(r.call("version")["result"]["protocol"] == "sotto-rpc-1", "carries on after parse errors")

# invalid requests: -32600
for bad in ['{"id":1,"method":"version"}', '{"jsonrpc":"1.0","id":1,"method":"version"}',
            '{"jsonrpc":"2.0","id":1,"method":5}', '{"jsonrpc":"2.0","id":1,"method":"version",'
            '"params":"x"}', '{"jsonrpc":"2.0","id":{},"method":"version"}', '[]', '42']:
    r.send_raw(bad + "\n")
    m = r.read_response()
    check(isinstance(m, dict) and m["error"]["code"] == -32600, "invalid %s: %r" % (bad, m))
check(m["id"] is None, "invalid request id")

# unknown method: -32601 (with its id); bad params: -32602
m = r.call("sendMessageToTheMoon", {"account": "carol"})
check(m["error"]["code"] == -32601, "unknown method: %r" % m)
for params in [{"account": "carol"}, {"account": "carol", "recipient": "bob"},
               {"account": "carol", "recipient": 5, "message": "x"},
               {"account": "carol", "recipient": "bob", "groupId": "g", "message": "x"},
               {"account": "nobody", "recipient": "bob", "message": "x"}]:
    m = r.call("send", params)
    check(m["error"]["code"] == -32602, "bad params %r: %r" % (params, m))
r.send_raw('{"jsonrpc":"2.0","id":77,"method":"version","params":[1]}\n')
check(r.read_response()["error"]["code"] == -32602, "positional params")

# a notification gets no answer, even a failing one; the next call's answer comes first
r.send_raw('{"jsonrpc":"2.0","method":"listContacts","params":{"account":"carol"}}\n')
r.send_raw('{"jsonrpc":"2.0","method":"noSuchMethod"}\n')
m = r.call("version")
check("result" in m, "notification answered: %r" % m)

# batches: one answer per request with an id, in order; only notifications: nothing
batch = [{"jsonrpc": "2.0", "id": "a", "method": "listGroups", "params": {"account": "carol"}},
         {"jsonrpc": "2.0", "method": "listGroups", "params": {"account": "carol"}},
         {"jsonrpc": "2.0", "id": "b", "method": "nope"},
         1,
         {"jsonrpc": "2.0", "id": "c", "method": "send",
          "params": {"account": "carol", "recipient": "nobody_here", "message": "x"}},
         {"jsonrpc": "2.0", "id": "d", "method": "version"}]
r.send_raw(json.dumps(batch) + "\n")
m = r.read_response()
check(isinstance(m, list) and len(m) == 5, "batch: %r" % m)
check([x["id"] for x in m] == ["a", "b", None, "c", "d"], "batch ids: %r" % m)
check(m[0]["result"] == [] and m[1]["error"]["code"] == -32601 and
      m[2]["error"]["code"] == -32600 and m[4]["result"]["version"] == "0.1.0", "batch: %r" % m)
# a command that fails: its exit code and the CLI's error text
check(m[3]["error"]["code"] == 6 and m[3]["error"]["data"]["exit"] == 6 and
      m[3]["error"]["data"]["code"] == "not_found", "command error: %r" % m[3])
r.send_raw(json.dumps([{"jsonrpc": "2.0", "method": "version"}]) + "\n")
m = r.call("version")
check("result" in m, "a batch of notifications was answered: %r" % m)

# a real send through the daemon; bob gets it
m = r.call("send", {"account": "carol", "recipient": "bob", "message": "rpc hello"})
check(m["result"]["type"] == "sent" and m["result"]["to"] == "bob" and
      m["result"]["timestamp"] > 0, "send: %r" % m)

# events: two subscribers; bob's messages reach both, with event ids
s1, s2 = Rpc(os.environ["SOCK"]), Rpc(os.environ["SOCK"])
a1 = s1.call("subscribeReceive", {"account": "carol", "subscriber": "bot1"})["result"]
a2 = s2.call("subscribeReceive", {"account": "carol", "subscriber": "bot2"})["result"]
# a new subscriber gets what the daemon received since it started: bob's
# message from before the daemon, which carol had not fetched yet -- at once
# when the daemon's worker already fetched it, else as a live event (the
# worker's first fetch races with this subscribe); either way 4 events below
check(a1["subscriber"] == "bot1" and a1["redelivered"] in (0, 1) and
      a2["redelivered"] in (0, 1), "subscribe: %r %r" % (a1, a2))
env = dict(os.environ, XDG_DATA_HOME=os.environ["HOME_BOB"])
for t in ["e1", "e2", "e3"]:
    subprocess.run([os.environ["SOTTO"], "--account", "bob", "send", "carol", t], env=env,
                   check=True, stdout=subprocess.DEVNULL, timeout=30)
check(s1.wait_events(4) and s2.wait_events(4), "events: %r %r" % (s1.events, s2.events))
for s, name in [(s1, "bot1"), (s2, "bot2")]:
    bodies = [x["params"]["event"]["body"] for x in s.events]
    check(bodies == ["before the daemon", "e1", "e2", "e3"], "bodies %r" % bodies)
    for x in s.events:
        p = x["params"]
        check(x["method"] == "receive" and p["account"] == "carol" and p["subscriber"] == name and
              p["event"]["type"] == "message" and p["event"]["from"] == "bob" and
              p["event"]["id"] == p["event_id"] and p["event_id"] > 0, "event %r" % x)
ids = [x["params"]["event_id"] for x in s1.events]
check(ids == sorted(ids) and len(set(ids)) == 4, "event ids %r" % ids)
check([x["params"]["event_id"] for x in s2.events] == ids, "same ids for both subscribers")

# bot1 acknowledges everything, bot2 only the first; both go away
m = s1.call("ack", {"account": "carol", "subscriber": "bot1", "upTo": ids[-1]})
check(m["result"]["acked_up_to"] >= ids[-1], "ack upTo: %r" % m)
m = s2.call("ack", {"account": "carol", "subscriber": "bot2", "eventIds": [ids[0]]})
check(m["result"]["acked_up_to"] >= ids[0], "ack ids: %r" % m)
m = s2.call("ack", {"account": "carol", "subscriber": "nobody"})
check(m["error"]["code"] == -32602, "ack without ids: %r" % m)
m = s2.call("ack", {"account": "carol", "subscriber": "nobody", "eventIds": [1]})
check("error" in m, "ack by a subscriber that never subscribed: %r" % m)
s1.close()
s2.close()
subprocess.run([os.environ["SOTTO"], "--account", "bob", "send", "carol", "while away"], env=env,
               check=True, stdout=subprocess.DEVNULL, timeout=30)
time.sleep(1.5)

# they come back: bot2 gets e1..e3 and what came meanwhile (same ids), bot1 only that
for name, want in [("bot2", ["e1", "e2", "e3", "while away"]), ("bot1", ["while away"])]:
    s = Rpc(os.environ["SOCK"])
    a = s.call("subscribeReceive", {"account": "carol", "subscriber": name})["result"]
    check(a["redelivered"] == len(want), "%s redelivered %r" % (name, a))
    check(s.wait_events(len(want), 10), "%s: %r" % (name, s.events))
    got = [x["params"]["event"]["body"] for x in s.events]
    check(got == want, "%s redelivered %r, want %r" % (name, got, want))
    if name == "bot2":
        check([x["params"]["event_id"] for x in s.events][:3] == ids[1:], "same ids again")
    m = s.call("unsubscribeReceive", {"account": "carol", "subscriber": name})
    check(m["result"]["was_subscribed"] is True, "unsubscribe %r" % m)
    s.close()
# groups by RPC (signal-cli's updateGroup: create, then change); its
# handlers reorder their argv (a double free in the daemon before)
m = r.call("updateGroup", {"account": "carol", "name": "RPC group", "members": ["bob"]})
check(m["result"]["type"] == "group" and m["result"]["members"] == ["bob", "carol"] or
      sorted(m["result"]["members"]) == ["bob", "carol"], "updateGroup create: %r" % m)
gid = m["result"]["id"]
m = r.call("updateGroup", {"account": "carol", "groupId": gid, "name": "RPC group 2"})
check(m["result"]["name"] == "RPC group 2", "updateGroup rename: %r" % m)
m = r.call("listGroups", {"account": "carol"})
check([g["name"] for g in m["result"]] == ["RPC group 2"], "listGroups: %r" % m)
m = r.call("send", {"account": "carol", "groupId": gid, "message": "to the group"})
check(m["result"]["type"] == "sent" and m["result"]["group"] == gid, "group send: %r" % m)
# the daemon's own account list is untouched by all this
check(len(r.call("listAccounts")["result"]) == 2, "daemon still serves both")
print("conformance ok")
PY
sc_ok bob receive
grep -q "rpc hello" "$E2E_DIR/last.out" || fail "bob did not get the message sent through the daemon"

log "limits: acks of future events, 100,000 pipelined requests, a client that never reads"
SOCK="$SOCK" DAEMON_PID="$DAEMON_PID" python3 - "$HERE" <<'PY' || fail "limits"
import os, socket, sys, threading, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check

SOCK = os.environ["SOCK"]
parent = int(os.environ["DAEMON_PID"])  # `timeout`; the daemon is its child


def daemon_pid():
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                        return int(p)
            except (OSError, IndexError, ValueError):
                pass
    return parent


pid = daemon_pid()


def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        return int([x for x in f if x.startswith("VmRSS")][0].split()[1])


# an ack naming an event newer than any stored one is refused (before, it
# acknowledged events that did not exist yet: never redelivered)
r = Rpc(SOCK)
a = r.call("subscribeReceive", {"account": "carol", "subscriber": "future"})["result"]
check(r.wait_events(a["redelivered"], 10), "future: redelivery")
for params in [{"upTo": 10 ** 9}, {"eventIds": [10 ** 9]}]:
    params.update({"account": "carol", "subscriber": "future"})
    m = r.call("ack", params)
    check("error" in m and m["error"]["code"] == -32602 and "does not exist" in
          m["error"]["message"], "ack of a future event: %r" % m)
r.close()

# 100,000 pipelined requests on one connection (answers read meanwhile): all
# answered, and another client too (before: the I/O thread blocked writing
# its own wake pipe once 64 KiB of answers were queued; the daemon hung)
N = 100000
a = socket.socket(socket.AF_UNIX)
a.connect(SOCK)
a.settimeout(60)
threading.Thread(target=lambda: a.sendall(b'{"jsonrpc":"2.0","id":1,"method":"version"}\n' * N),
                 daemon=True).start()
got, deadline = 0, time.time() + 60
while got < N and time.time() < deadline:
    try:
        chunk = a.recv(1 << 20)
    except socket.timeout:
        break
    if not chunk:
        break
    got += chunk.count(b"\n")
check(got == N, "pipelined requests: %d of %d answered" % (got, N))
b = Rpc(SOCK, timeout=10)
check(b.call("version")["result"]["protocol"] == "sotto-rpc-1", "another client after the flood")
a.close()
b.close()

# a client that sends requests and never reads: the daemon stops reading
# from it once 1 MiB of answers wait (its sends block) instead of buffering
# without bound (before: 42 MB taken in 10 s, the daemon grew by 75 MB)
before = rss_kb()
c = socket.socket(socket.AF_UNIX)
c.connect(SOCK)
c.setblocking(False)
chunk = b'{"jsonrpc":"2.0","id":1,"method":"version"}\n' * 20000
sent, deadline = 0, time.time() + 10
while time.time() < deadline:
    try:
        sent += c.send(chunk)
    except BlockingIOError:
        time.sleep(0.05)
time.sleep(1)
grown = rss_kb() - before
check(sent < (8 << 20) and grown < 32 * 1024,
      "never-reading client: %d KB taken, daemon grew %d KB" % (sent >> 10, grown))
d = Rpc(SOCK, timeout=10)
check(d.call("version")["result"]["protocol"] == "sotto-rpc-1", "answered beside a stalled client")
c.close()
d.close()
print("limits ok (never-reading client: %d KB taken, daemon grew %d KB)" % (sent >> 10, grown))
PY

log "the echo bots of docs/rpc.md and README.md as written: every event handled and acknowledged"
SOCK="$SOCK" SOTTO="$SOTTO" HOME_BOB="$E2E_DIR/home/bob" python3 - "$HERE" "$HERE/../../docs/rpc.md" \
    "$HERE/../../README.md" <<'PY' || fail "documented bots"
import os, re, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check

SOCK = os.environ["SOCK"]
env = dict(os.environ, XDG_DATA_HOME=os.environ["HOME_BOB"])


def unacked(name):
    r = Rpc(SOCK)
    n = r.call("subscribeReceive", {"account": "carol", "subscriber": name})["result"]["redelivered"]
    r.close()
    return n


for doc, name in [(sys.argv[2], "docbot"), (sys.argv[3], "readmebot")]:
    with open(doc) as f:
        code = re.search(r"python3 -c '\n(.*?)'\n", f.read(), re.S).group(1)
    code = code.replace('"alice"', '"carol"').replace('subscriber="echo"',
                                                        'subscriber="%s"' % name)
    check(name in code and '"carol"' in code, "%s: the bot's code %r" % (doc, code))
    for i in range(3):  # waiting for it: redelivered together when it subscribes
        subprocess.run([os.environ["SOTTO"], "--account", "bob", "send", "carol",
                        "%s %d" % (name, i)], env=env, check=True, stdout=subprocess.DEVNULL,
                       timeout=30)
    bot = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    deadline, left = time.time() + 60, -1
    while time.time() < deadline:
        time.sleep(1)
        left = unacked(name)
        if left == 0:
            break
    bot.kill()
    bot.wait()
    check(left == 0, "%s (%s): %d events never handled" % (name, doc, left))
print("documented bots ok")
PY
sc_ok bob receive
# each bot echoes every message since the daemon started: docbot's three twice
assert_eq "$(grep -c -F ": echo: docbot " "$E2E_DIR/last.out")" "6" "bob got the bots' echoes"
assert_eq "$(grep -c -F ": echo: readmebot " "$E2E_DIR/last.out")" "3" "bob got the README bot's echoes"

log "the CLI runs through the daemon: same output, same exit codes"
sc carol send nobody_here "x"
assert_rc 6 "send to an unknown user through the daemon"
cmp -s "$E2E_DIR/last.err" "$E2E_DIR/direct.err" ||
    fail "stderr differs: [$(cat "$E2E_DIR/last.err")] vs [$(cat "$E2E_DIR/direct.err")]"
cmp -s "$E2E_DIR/last.out" "$E2E_DIR/direct.out" || fail "stdout differs"
sc carol --json send nobody_here "x"
cmp -s "$E2E_DIR/last.out" "$E2E_DIR/direct-json.out" || fail "--json output differs"
sc_ok carol send bob "through the daemon"
grep -Eq '^sent to bob \(timestamp [0-9]+\)$' "$E2E_DIR/last.out" || fail "send output: $(cat "$E2E_DIR/last.out")"
printf 'from stdin\n' >"$E2E_DIR/in.txt"
sc_in carol "$E2E_DIR/in.txt" send bob
assert_rc 0 "send from stdin through the daemon"
sc_ok carol --json group create "Daemon group" bob
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "group" "group create through the daemon"
sc_ok bob receive
for t in "through the daemon" "from stdin"; do
    assert_eq "$(grep -c -F ": $t" "$E2E_DIR/last.out")" "1" "bob got '$t' once"
done
grep -q 'group "Daemon group"' "$E2E_DIR/last.out" || fail "bob did not get the group"
grep -q "account carol is in use" "$E2E_DIR/daemon.err" && fail "a CLI call was refused"

log "updateGroup: admins and the open flag (signal-cli's admin / removeAdmin)"
SOCK="$SOCK" python3 - "$HERE" <<'PY' || fail "updateGroup admin/open"
import os, sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check
r = Rpc(os.environ["SOCK"])
m = r.call("updateGroup", {"account": "carol", "groupId": "Daemon group", "admin": ["bob"],
                           "open": False})
check("result" in m, "updateGroup admin: %r" % m)
m = r.call("updateGroup", {"account": "carol", "groupId": "Daemon group", "open": "no"})
check(m.get("error", {}).get("code") == -32602, "open must be a boolean: %r" % m)

# updateConfiguration's "sealed" (`config sealed on|off`); before, it was
# ignored (the result still said "sealed": true)
m = r.call("updateConfiguration", {"account": "carol", "sealed": False})
check(m.get("result", {}).get("sealed") is False, "updateConfiguration sealed off: %r" % m)
m = r.call("getConfiguration", {"account": "carol"})
check(m.get("result", {}).get("sealed") is False, "getConfiguration after sealed off: %r" % m)
m = r.call("updateConfiguration", {"account": "carol", "sealed": "no"})
check(m.get("error", {}).get("code") == -32602, "sealed must be a boolean: %r" % m)
m = r.call("updateConfiguration", {"account": "carol", "sealed": True,
                                   "readReceipts": True})
check(m.get("result", {}).get("sealed") is True and
      m.get("result", {}).get("read_receipts") is True, "sealed on again: %r" % m)
PY
sc_ok carol --json group list
grep '"Daemon group"' "$E2E_DIR/last.out" | grep -q '"admins": *\["bob", *"carol"\]' ||
    fail "bob is not an admin: $(cat "$E2E_DIR/last.out")"
grep '"Daemon group"' "$E2E_DIR/last.out" | grep -q '"open": *false' ||
    fail "the group is not closed: $(cat "$E2E_DIR/last.out")"

log "SIGTERM: the daemon stops, the socket goes, the CLI connects by itself again"
bg_stop "$DAEMON_PID"
assert_eq "$RC" "0" "daemon exit code on SIGTERM"
[ -e "$SOCK" ] && fail "socket left behind"
sc_ok carol send bob "after the daemon"

log "a daemon on another socket: the CLI forwards to the daemon that holds its account"
# the lock file names the holder's socket; before, the CLI tried only the
# default path (another data directory's daemon may answer there and send
# as the wrong account; here nothing answers there and the CLI exited 10)
XDG_DATA_HOME="$E2E_DIR/home/carol" timeout -k 2 200 "$SOTTO" daemon --socket "$E2E_DIR/alt.sock" \
    >"$E2E_DIR/daemon2.out" 2>"$E2E_DIR/daemon2.err" </dev/null &
DAEMON_PID=$!
E2E_BG_PIDS+=("$DAEMON_PID")
for _ in $(seq 1 100); do
    [ -S "$E2E_DIR/alt.sock" ] && grep -q "^socket $E2E_DIR/alt.sock\$" \
        "$E2E_DIR/home/carol/sotto/carol/lock" 2>/dev/null && break
    sleep 0.1
done
grep -q "^socket $E2E_DIR/alt.sock\$" "$E2E_DIR/home/carol/sotto/carol/lock" ||
    fail "the lock file does not name the socket: $(cat "$E2E_DIR/home/carol/sotto/carol/lock")"
[ -e "$SOCK" ] && fail "something answers on the default socket"
sc_ok carol send bob "via the other socket"
grep -q "account carol is in use" "$E2E_DIR/last.err" && fail "refused: $(cat "$E2E_DIR/last.err")"
sc_ok bob receive
assert_eq "$(grep -c -F ": via the other socket" "$E2E_DIR/last.out")" "1" "bob got it once"
bg_stop "$DAEMON_PID"
assert_eq "$RC" "0" "second daemon's exit code on SIGTERM"
log "ok"
