#!/usr/bin/env bash
# Receipts, read state and typing indicators (issue 11, docs/cli.md
# "Everyday messaging"):
#  1. 1:1: bob's one-shot receive sends ONE delivery receipt for three
#     messages (batched); `read` sends one read receipt after its random
#     1-5 s delay; alice sees the events and the per-message state in
#     `history --json`; `sotto receipts` prints it.
#  2. a 3-member group: each member's own state (read, delivered, sent).
#  3. read receipts off: carol sends none (alice's state stays delivered),
#     and alice with them off shows none (bob's read receipt is ignored).
#  4. a linked device of bob gets the read state (and the timer starts),
#     and the settings sync.
#  5. typing through the daemon: started and stopped arrive live with
#     "event_id": null, an indicator expires after 15 s, typing off sends
#     none and shows none.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
export SOTTO_TEST_RECEIPT_DELAY_MS=0

server_start
register_all alice bob carol
# writing to someone accepts the conversation (a stranger's first message
# is a request and gets no receipt: e2e_requests_block.sh)
sc_ok bob send alice "hi alice"
sc_ok carol send alice "hi alice"
receive_json alice "$E2E_DIR/a0.json"

# receipts_of USER CONV TS [--group]: "name=state ..." of USER's message TS
# in `history --json` (sorted by name)
receipts_of() {
    local who=$1 conv=$2 ts=$3
    shift 3
    sc_ok "$who" --json history "$@" "$conv"
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    ev = json.loads(line)
    if ev.get("type") == "outgoing" and ev["timestamp"] == int(sys.argv[2]):
        print(" ".join("%s=%s" % (r["recipient"], r["state"])
                       for r in sorted(ev.get("receipts", []), key=lambda r: r["recipient"])))
' "$E2E_DIR/last.out" "$ts"
}
# receipt_events FILE: "from type ts,ts,..." per receipt event in FILE
receipt_events() {
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    ev = json.loads(line)
    if ev.get("type") == "receipt":
        print(ev["from"], ev["receipt_type"], ",".join(str(t) for t in ev["timestamps"]))
' "$1"
}
sent_ts() { jfield timestamp <"$E2E_DIR/last.out"; }

log "1. three messages; bob's receive sends one delivery receipt for all three"
sc_ok alice --json send bob "one"
t1=$(sent_ts)
sc_ok alice --json send bob "two"
t2=$(sent_ts)
sc_ok alice --json send bob "three"
t3=$(sent_ts)
assert_eq "$(receipts_of alice bob "$t1")" "bob=sent" "state before bob received"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b1.json" three)" "1" "bob got the messages"
receive_json alice "$E2E_DIR/a1.json"
assert_eq "$(receipt_events "$E2E_DIR/a1.json")" "bob delivery $t1,$t2,$t3" \
    "one batched delivery receipt"
for t in "$t1" "$t2" "$t3"; do
    assert_eq "$(receipts_of alice bob "$t")" "bob=delivered" "state of $t after delivery"
done

log "bob reads two of them (by id): one read receipt, after its delay"
unset SOTTO_TEST_RECEIPT_DELAY_MS
start=$(date +%s%N)
sc_ok bob --json read alice "$t1" "$t2"
took=$((($(date +%s%N) - start) / 1000000))
export SOTTO_TEST_RECEIPT_DELAY_MS=0
assert_eq "$(jfield marked <"$E2E_DIR/last.out")" "2" "marked read"
[ "$took" -ge 1000 ] || fail "read sent its receipt after ${took} ms: no random 1-5 s delay"
sc_ok bob --json history alice
assert_eq "$(events message "$E2E_DIR/last.out" | jfield read | tr '\n' ' ')" "true true false " \
    "bob's read flags"
sc_ok bob --json read alice "$t1"
assert_eq "$(jfield marked <"$E2E_DIR/last.out")" "0" "reading again marks nothing"
sc bob read alice 12345
assert_rc 6 "reading a message that does not exist"
receive_json alice "$E2E_DIR/a2.json"
assert_eq "$(receipt_events "$E2E_DIR/a2.json")" "bob read $t1,$t2" "one read receipt for two"
assert_eq "$(receipts_of alice bob "$t1")" "bob=read" "t1 read"
assert_eq "$(receipts_of alice bob "$t3")" "bob=delivered" "t3 still only delivered"
sc_ok alice --json receipts bob "$t2"
assert_eq "$(jfield receipts <"$E2E_DIR/last.out" | python3 -c 'import json,sys; print([(r["recipient"], r["state"]) for r in json.load(sys.stdin)])')" \
    "[('bob', 'read')]" "sotto receipts"
log "a receipt from someone the message did not go to is ignored"
sc_ok alice --json send carol "for carol only"
tc=$(sent_ts)
receive_json carol "$E2E_DIR/c0.json"
receive_json alice "$E2E_DIR/a2b.json"
assert_eq "$(receipts_of alice carol "$tc")" "carol=delivered" "carol's delivery"
# bob's store is given a copy of alice's message to carol (as if he had
# learnt its id), so that his client sends alice a read receipt for it
sqlite3 -batch -cmd '.timeout 5000' "$E2E_DIR/home/bob/sotto/bob/store.db" \
    "INSERT INTO client_messages(conv_kind, conv, direction, sender, sender_device, timestamp,
     server_ts, received_ms, kind, body) VALUES('contact', 'alice', 0, 'alice', 1, $tc, 0, 0,
     'text', 'not for bob')" || fail "cannot plant the row in bob's store"
sc_ok bob --json read alice "$tc"
assert_eq "$(jfield marked <"$E2E_DIR/last.out")" "1" "bob read the planted row"
receive_json alice "$E2E_DIR/a2c.json"
assert_eq "$(receipt_events "$E2E_DIR/a2c.json")" "" "bob's receipt for carol's message shown"
assert_eq "$(receipts_of alice carol "$tc")" "carol=delivered" "bob's receipt changed nothing"

log "2. a 3-member group: each member's state"
sc_ok alice --json group create team bob carol
sc_ok alice --json group send team "hello team"
tg=$(sent_ts)
assert_eq "$(receipts_of alice team "$tg" --group)" "bob=sent carol=sent" "group: nothing yet"
receive_json bob "$E2E_DIR/b2.json"
receive_json alice "$E2E_DIR/a3.json"
assert_eq "$(receipts_of alice team "$tg" --group)" "bob=delivered carol=sent" "group: bob got it"
sc_ok bob read --group team
grep -qx "1 message marked read" "$E2E_DIR/last.out" || fail "read: $(cat "$E2E_DIR/last.out")"
receive_json carol "$E2E_DIR/c1.json"
receive_json alice "$E2E_DIR/a4.json"
assert_eq "$(receipts_of alice team "$tg" --group)" "bob=read carol=delivered" \
    "group: bob read, carol delivered"

log "3. carol turns read receipts off: she sends none"
sc_ok carol --json config read-receipts off
assert_eq "$(jfield read_receipts <"$E2E_DIR/last.out")" "false" "carol's setting"
sc_ok carol --json read --group team
assert_eq "$(jfield marked <"$E2E_DIR/last.out")" "1" "carol marked it read"
receive_json alice "$E2E_DIR/a5.json"
assert_eq "$(receipt_events "$E2E_DIR/a5.json")" "" "no read receipt from carol"
assert_eq "$(receipts_of alice team "$tg" --group)" "bob=read carol=delivered" \
    "group: carol stays delivered"
log "alice turns read receipts off: bob's read receipt is not shown"
sc_ok alice config read-receipts off
sc_ok alice --json send bob "four"
t4=$(sent_ts)
receive_json bob "$E2E_DIR/b3.json"
sc_ok bob read alice "$t4"
receive_json alice "$E2E_DIR/a6.json"
assert_eq "$(receipt_events "$E2E_DIR/a6.json")" "bob delivery $t4" "only the delivery receipt shown"
assert_eq "$(receipts_of alice bob "$t4")" "bob=delivered" "no read state shown"
assert_eq "$(receipts_of alice bob "$t1")" "bob=delivered" "earlier read states not shown either"
sc_ok alice config read-receipts on
assert_eq "$(receipts_of alice bob "$t4")" "bob=delivered" "the ignored receipt stays ignored"

log "4. bob links a second device; reading on one marks it read on the other"
link_device bob bob2
receive_json bob "$E2E_DIR/b4.json"
receive_json bob2 "$E2E_DIR/b2_0.json"
sc_ok alice --json send bob "five"
t5=$(sent_ts)
receive_json bob "$E2E_DIR/b5.json"
receive_json bob2 "$E2E_DIR/b2_1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b2_1.json" five)" "1" "the linked device got it"
sc_ok bob2 --json history alice
assert_eq "$(events message "$E2E_DIR/last.out" | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e["timestamp"] == int(sys.argv[1]):
        print(e["read"])' "$t5")" "False" "unread on the linked device"
sc_ok bob read alice
grep -qx "2 messages marked read" "$E2E_DIR/last.out" || fail "read: $(cat "$E2E_DIR/last.out")"
receive_json bob2 "$E2E_DIR/b2_2.json"
events read "$E2E_DIR/b2_2.json" | jfield target.timestamp | grep -x "$t5" >/dev/null ||
    fail "the linked device's read events do not name $t5: $(cat "$E2E_DIR/b2_2.json")"
sc_ok bob2 --json history alice
assert_eq "$(events message "$E2E_DIR/last.out" | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e["timestamp"] == int(sys.argv[1]):
        print(e["read"])' "$t5")" "True" "read on the linked device"
log "the settings sync to the linked device"
sc_ok bob2 --json config
assert_eq "$(jfield typing_indicators <"$E2E_DIR/last.out")" "true" "bob2: typing on at first"
sc_ok bob config typing off
receive_json bob2 "$E2E_DIR/b2_3.json"
sc_ok bob2 --json config
assert_eq "$(jfield typing_indicators <"$E2E_DIR/last.out")" "false" "bob2: typing off after the sync"
assert_eq "$(jfield read_receipts <"$E2E_DIR/last.out")" "true" "bob2: read receipts still on"
sc_ok bob config typing on
receive_json bob2 "$E2E_DIR/b2_4.json"

log "5. typing through bob's daemon: live events with event_id null"
daemon_start bob --account bob
SOCK="$SOCK" SOTTO="$SOTTO" HOME_ALICE="$E2E_DIR/home/alice" python3 - "$HERE" <<'PY' || fail "typing via the daemon"
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check

def alice(*args):
    env = dict(os.environ, XDG_DATA_HOME=os.environ["HOME_ALICE"])
    p = subprocess.run([os.environ["SOTTO"], "--account", "alice", "--json"] + list(args),
                       env=env, capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, "alice %r: %s %s" % (args, p.stdout, p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])

def typing_events(r, n, timeout):
    r.wait_events(n, timeout)
    return [e for e in r.events if e["params"]["event"]["type"] == "typing"]

r = Rpc(os.environ["SOCK"])
check("result" in r.call("subscribeReceive", {"account": "bob", "subscriber": "t"}), "subscribe")
r.wait_events(100, 2.0)  # whatever was not acknowledged yet
r.events = []
check(alice("typing", "bob")["sent"] is True, "alice sent a typing indicator")
ev = typing_events(r, 1, 20)
check(len(ev) == 1, "typing started arrived: %r" % r.events)
p = ev[0]["params"]
check(p["event_id"] is None, "a typing event has event_id null: %r" % p)
check(p["event"]["action"] == "started" and p["event"]["from"] == "alice" and
      p["event"]["conversation"] == "alice", "started: %r" % p)
check(alice("typing", "bob", "--stop")["sent"] is True, "alice stopped")
ev = typing_events(r, 2, 20)
check(len(ev) == 2 and ev[1]["params"]["event"]["action"] == "stopped", "stopped: %r" % r.events)

# started again and left alone: the indicator expires after 15 s
r.events = []
alice("typing", "bob")
ev = typing_events(r, 1, 20)
check(len(ev) == 1 and ev[0]["params"]["event"]["action"] == "started", "again: %r" % r.events)
t0 = time.time()
ev = typing_events(r, 2, 30)
took = time.time() - t0
check(len(ev) == 2 and ev[1]["params"]["event"]["action"] == "stopped", "expired: %r" % r.events)
check(13.0 <= took <= 20.0, "expired after %.1f s, not about 15 s" % took)

# a group: every member gets it (bob through the daemon)
check(alice("typing", "--group", "team")["sent"] is True, "group typing")
ev = typing_events(r, 3, 20)
check(len(ev) == 3 and ev[2]["params"]["event"]["group"]["name"] == "team" and
      ev[2]["params"]["event"]["action"] == "started", "group typing: %r" % r.events)

# sendTyping through the daemon reaches alice (printed by her receive)
m = r.call("sendTyping", {"account": "bob", "recipient": "alice"})
check(m.get("result", {}).get("sent") is True, "sendTyping: %r" % m)

# bob turns typing off (updateConfiguration): nothing shown, nothing sent
m = r.call("updateConfiguration", {"account": "bob", "typingIndicators": False})
check(m.get("result", {}).get("typing_indicators") is False, "updateConfiguration: %r" % m)
m = r.call("getConfiguration", {"account": "bob"})
got = dict(m["result"])
root = got.pop("sealed_root", None)  # the pinned sealed-sender trust root (66 hex)
check(got == {"type": "config", "read_receipts": True, "typing_indicators": False,
              "sealed": True} and isinstance(root, str) and len(root) == 66,
      "getConfiguration: %r" % m)
n = len(r.events)
alice("typing", "bob", "--stop")  # ends the group indicator... not shown now
alice("typing", "bob")
r.wait_events(n + 1, 4.0)
check(not [e for e in r.events[n:] if e["params"]["event"]["type"] == "typing"],
      "typing shown while off: %r" % r.events[n:])
m = r.call("sendTyping", {"account": "bob", "groupId": "team"})
check(m.get("result", {}).get("sent") is False, "typing sent while off: %r" % m)

# sendReceipt / markRead through the daemon: the read receipt goes out when due
t6 = alice("send", "bob", "six")["timestamp"]
r.wait_events(len(r.events) + 1, 20)
m = r.call("sendReceipt", {"account": "bob", "recipient": "alice", "targetTimestamps": [t6],
                           "type": "read"})
check(m.get("result", {}).get("marked") == 1, "sendReceipt: %r" % m)
PY
sleep 2
# alice's receive: the typing bob sent (before he turned it off), and his
# read receipt of "six" which the daemon sent when due
sc_ok alice --json receive
cp "$E2E_DIR/last.out" "$E2E_DIR/a7.json"
assert_eq "$(events typing "$E2E_DIR/a7.json" | jfield action | tr '\n' ' ')" "started " \
    "alice saw bob typing once"
receipt_events "$E2E_DIR/a7.json" | grep "^bob read " >/dev/null ||
    fail "no read receipt from bob's daemon: $(cat "$E2E_DIR/a7.json")"
