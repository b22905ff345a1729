#!/usr/bin/env bash
# `sotto daemon` (docs/rpc.md) against a real server over its real Unix
# socket: JSON-RPC 2.0 conformance (single calls, batches, notifications,
# parse errors after which it carries on, -32600/-32601/-32602, command
# errors with the CLI's exit code), two accounts in one daemon, events with
# event ids to several subscribers, ack and redelivery after a reconnect,
# one daemon per socket and per account, and the CLI running through the
# daemon with the same output and exit codes as without it.
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
XDG_DATA_HOME="$E2E_DIR/home/carol" timeout -k 2 200 "$SOTTO" daemon \
    >"$E2E_DIR/daemon.out" 2>"$E2E_DIR/daemon.err" </dev/null &
DAEMON_PID=$!
E2E_BG_PIDS+=("$DAEMON_PID")
for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && break
    sleep 0.1
done
[ -S "$SOCK" ] || fail "no socket: $(cat "$E2E_DIR/daemon.err")"
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
# message from before the daemon, which carol had not fetched yet
check(a1["subscriber"] == "bot1" and a1["redelivered"] == 1 and a2["redelivered"] == 1,
      "subscribe: %r %r" % (a1, a2))
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

log "SIGTERM: the daemon stops, the socket goes, the CLI connects by itself again"
bg_stop "$DAEMON_PID"
assert_eq "$RC" "0" "daemon exit code on SIGTERM"
[ -e "$SOCK" ] && fail "socket left behind"
sc_ok carol send bob "after the daemon"
log "ok"
