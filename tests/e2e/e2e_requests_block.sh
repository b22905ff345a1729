#!/usr/bin/env bash
# Message requests and blocking (issue 11, docs/cli.md "Message requests and
# blocking", docs/protocol.md "Message requests and blocking"):
#  1. a stranger's first message is a request ("request": true, "[request]"
#     in text) and produces no delivery receipt, even after the receipt delay
#     (an accepted contact's message, the control, does); `requests` lists it;
#  2. `accept` clears the mark of the stored rows and later messages are no
#     requests (and get their receipt);
#  3. `request delete` wipes the conversation: its text is in no file of the
#     store any more (database, WAL); a later message is a request again;
#  4. a blocked sender's messages (1:1 and in a group) never show and are not
#     stored; sending to them is refused (exit 2); a pending request from them
#     goes when they are blocked; `unblock` -> their messages show again;
#  5. a linked device gets the block list in its link sync, and every change
#     after (SyncMessage.blocked): blocked messages never show there either;
#     an accept on the phone reaches the laptop (message_request_response);
#  6. the same through the daemon: block/unblock/listBlocked/listRequests/
#     sendMessageRequestResponse/listContacts, and subscriber events.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
# receipts are due at once (docs/cli.md "Test hooks"): "no receipt" below
# is not "not yet"
export SOTTO_TEST_RECEIPT_DELAY_MS=0

server_start
register_all alice bob mallory carol dave erin frank gina

# receipts_in FILE: how many receipt events FILE holds
receipts_in() { events receipt "$1" | wc -l; }
# request_flag FILE BODY: the "request" field of the message events with BODY
request_flag() {
    events message "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    ev = json.loads(line)
    if ev.get("body") == sys.argv[1]:
        print("true" if ev.get("request") else "false")
' "$2"
}
# store_hits USER NEEDLE: occurrences of NEEDLE in every file of USER's store
store_hits() {
    local n=0 f
    while IFS= read -r -d '' f; do
        n=$((n + $(grep -c -a -F -- "$2" "$f" || true)))
    done < <(find "$E2E_DIR/home/$1" -type f -print0)
    echo "$n"
}
history_bodies() { # USER ARGS...: bodies of the text rows of `history ARGS`
    sc_ok "$1" --json history "${@:2}"
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line:
        ev = json.loads(line)
        if ev.get("type") in ("message", "outgoing"):
            print(ev.get("body"), "request" if ev.get("request") else "-")
' "$E2E_DIR/last.out"
}

log "control: bob is an accepted contact of alice (she wrote to him); his message gets a receipt"
sc_ok alice send bob "hello bob"
receive_json bob "$E2E_DIR/b0.json"
sc_ok bob send alice "hi alice from bob"
receive_json alice "$E2E_DIR/a0.json"
assert_eq "$(request_flag "$E2E_DIR/a0.json" "hi alice from bob")" "false" "bob's message is no request"
sleep 1
receive_json bob "$E2E_DIR/b1.json"
[ "$(receipts_in "$E2E_DIR/b1.json")" -ge 1 ] ||
    fail "bob got no delivery receipt (the control): $(cat "$E2E_DIR/b1.json")"

log "1. a stranger's message is a request and produces no receipt"
sc_ok mallory send alice "hello from a stranger"
sc_ok alice receive
grep -q "mallory \[request\]: hello from a stranger" "$E2E_DIR/last.out" ||
    fail "text receive: $(cat "$E2E_DIR/last.out")"
sc_ok alice --json history mallory
assert_eq "$(request_flag "$E2E_DIR/last.out" "hello from a stranger")" "true" "the stranger's message is a request"
sleep 2 # well past the receipt delay (0 ms here; 1-5 s by default)
sc_ok alice receive
sleep 1
receive_json mallory "$E2E_DIR/m1.json"
assert_eq "$(receipts_in "$E2E_DIR/m1.json")" "0" "receipts the stranger got"
sc_ok alice --json requests
assert_eq "$(jfield conversation <"$E2E_DIR/last.out")" "mallory" "requests: who"
assert_eq "$(jfield count <"$E2E_DIR/last.out")" "1" "requests: count"
assert_eq "$(jfield excerpt <"$E2E_DIR/last.out")" "hello from a stranger" "requests: excerpt"
sc_ok alice --json contacts
python3 -c '
import json, sys
c = {j["name"]: j for j in map(json.loads, filter(str.strip, open(sys.argv[1])))}
assert c["mallory"]["accepted"] is False and c["bob"]["accepted"] is True, c
assert c["mallory"]["blocked"] is False, c
' "$E2E_DIR/last.out" || fail "contacts: $(cat "$E2E_DIR/last.out")"

log "2. accept: the stored request loses its mark, later messages are no requests"
sc alice request delete mallroy
assert_rc 6 "request delete of a name with no conversation"
sc_ok alice accept mallory
sc_ok alice --json requests
assert_eq "$(cat "$E2E_DIR/last.out")" "" "requests after accept"
assert_eq "$(history_bodies alice mallory | tr '\n' '|')" "hello from a stranger -|" \
    "mallory's history after accept"
sc_ok mallory send alice "second from mallory"
receive_json alice "$E2E_DIR/a2.json"
assert_eq "$(request_flag "$E2E_DIR/a2.json" "second from mallory")" "false" "after accept"
sleep 1
receive_json mallory "$E2E_DIR/m2.json"
[ "$(receipts_in "$E2E_DIR/m2.json")" -ge 1 ] ||
    fail "mallory got no receipt after accept: $(cat "$E2E_DIR/m2.json")"

log "2b. a group a stranger added us to is a request until accept --group"
sc_ok gina --json group create ginas alice
receive_json alice "$E2E_DIR/a2g.json"
sc_ok gina group send ginas "gina group hello"
receive_json alice "$E2E_DIR/a2h.json"
assert_eq "$(request_flag "$E2E_DIR/a2h.json" "gina group hello")" "true" "the stranger's group message"
sc_ok alice --json requests
assert_eq "$(jfield group_name <"$E2E_DIR/last.out")" "ginas" "requests: the group"
sc_ok alice accept --group ginas
sc_ok gina group send ginas "gina group again"
receive_json alice "$E2E_DIR/a2i.json"
assert_eq "$(request_flag "$E2E_DIR/a2i.json" "gina group again")" "false" "after accept --group"
sc_ok alice --json requests
assert_eq "$(cat "$E2E_DIR/last.out")" "" "requests after accept --group"

log "3. request delete wipes the conversation from every store file"
NEEDLE="carols-unique-needle-4711"
sc_ok carol send alice "request text $NEEDLE"
receive_json alice "$E2E_DIR/a3.json"
assert_eq "$(request_flag "$E2E_DIR/a3.json" "request text $NEEDLE")" "true" "carol's message is a request"
[ "$(store_hits alice "$NEEDLE")" -gt 0 ] || fail "the needle is not in alice's store (the scan proves nothing)"
sc alice accept nosuchgroup --group
assert_rc 6 "accept of an unknown group"
sc alice request delete bob
assert_rc 8 "request delete of an accepted conversation"
sc_ok alice --json request delete carol
assert_eq "$(jfield deleted <"$E2E_DIR/last.out")" "1" "rows deleted"
assert_eq "$(history_bodies alice carol)" "" "carol's history after delete"
assert_eq "$(store_hits alice "$NEEDLE")" "0" "the deleted request's text in alice's store files"
sc_ok carol send alice "carol again"
receive_json alice "$E2E_DIR/a3b.json"
assert_eq "$(request_flag "$E2E_DIR/a3b.json" "carol again")" "true" "after delete, a request again"

log "4. block: a pending request goes; blocked messages never show; no sending to them"
sc_ok alice --json block carol dave
assert_eq "$(jfield changed <"$E2E_DIR/last.out")" "2" "newly blocked"
assert_eq "$(history_bodies alice carol)" "" "carol's request after the block"
sc alice send dave "to a blocked one"
assert_rc 2 "send to a blocked contact"
grep -q "dave is blocked: unblock first" "$E2E_DIR/last.err" || fail "send: $(cat "$E2E_DIR/last.err")"
sc_ok alice blocked
assert_eq "$(tr '\n' ' ' <"$E2E_DIR/last.out")" "carol dave " "alice's block list"
sc_ok bob --json group create club alice dave
receive_json alice "$E2E_DIR/a4g.json"
receive_json dave "$E2E_DIR/d4g.json"
sc_ok dave send alice "dave blocked one-to-one"
sc_ok dave group send club "dave blocked in the group"
sc_ok bob group send club "bob in the group"
sc_ok alice --json receive
cp "$E2E_DIR/last.out" "$E2E_DIR/a4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a4.json" "dave blocked one-to-one")" "0" "dave's 1:1 shown"
assert_eq "$(count_message_bodies "$E2E_DIR/a4.json" "dave blocked in the group")" "0" "dave's group message shown"
assert_eq "$(count_message_bodies "$E2E_DIR/a4.json" "bob in the group")" "1" "bob's group message"
assert_eq "$(request_flag "$E2E_DIR/a4.json" "bob in the group")" "false" \
    "a group an accepted contact added us to is no request"
assert_eq "$(store_hits alice "dave blocked")" "0" "dave's texts in alice's store"
receive_json bob "$E2E_DIR/b4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b4.json" "dave blocked in the group")" "1" "bob got dave's group message"

log "5. a linked device gets the block list (link sync), then every change"
link_device alice laptop
receive_json alice "$E2E_DIR/a5.json"
receive_json laptop "$E2E_DIR/l5.json"
sc_ok laptop blocked
assert_eq "$(tr '\n' ' ' <"$E2E_DIR/last.out")" "carol dave " "the laptop's block list (link sync)"
sc_ok laptop --json contacts
python3 -c '
import json, sys
c = {j["name"]: j for j in map(json.loads, filter(str.strip, open(sys.argv[1])))}
assert c["mallory"]["accepted"] is True and c["bob"]["accepted"] is True, c
assert c["dave"]["blocked"] is True and c["bob"]["blocked"] is False, c
' "$E2E_DIR/last.out" || fail "laptop contacts: $(cat "$E2E_DIR/last.out")"
sc_ok alice block erin
sc_ok laptop receive
sc_ok laptop blocked
assert_eq "$(tr '\n' ' ' <"$E2E_DIR/last.out")" "carol dave erin " "the laptop's block list after a sync"
sc_ok erin send alice "erin while blocked"
sc_ok dave send alice "dave while blocked"
receive_json laptop "$E2E_DIR/l5b.json"
receive_json alice "$E2E_DIR/a5b.json"
for f in l5b a5b; do
    assert_eq "$(count_message_bodies "$E2E_DIR/$f.json" "erin while blocked")" "0" "erin's message ($f)"
    assert_eq "$(count_message_bodies "$E2E_DIR/$f.json" "dave while blocked")" "0" "dave's message ($f)"
done
assert_eq "$(store_hits laptop "while blocked")" "0" "blocked texts in the laptop's store"
log "unblock on the phone: the laptop follows; erin shows again (as a request)"
sc_ok alice unblock erin
sc_ok laptop receive
sc_ok laptop blocked
assert_eq "$(tr '\n' ' ' <"$E2E_DIR/last.out")" "carol dave " "the laptop's block list after unblock"
sc_ok erin send alice "erin after unblock"
receive_json laptop "$E2E_DIR/l5c.json"
receive_json alice "$E2E_DIR/a5c.json"
for f in l5c a5c; do
    assert_eq "$(request_flag "$E2E_DIR/$f.json" "erin after unblock")" "true" "erin's message after unblock ($f)"
done
sc_ok alice accept erin
receive_json laptop "$E2E_DIR/l5d.json"
sc_ok laptop --json requests
assert_eq "$(jfield conversation <"$E2E_DIR/last.out" | grep -c erin)" "0" "erin's request on the laptop after the phone accepted"
sc_ok erin send alice "erin accepted"
receive_json laptop "$E2E_DIR/l5e.json"
assert_eq "$(request_flag "$E2E_DIR/l5e.json" "erin accepted")" "false" "on the laptop after accept"
sc laptop send dave "from the laptop to dave"
assert_rc 2 "send to a blocked contact from the laptop"

log "6. through the daemon: methods, events, and the CLI forwarded"
daemon_start alice --account alice
sc_ok alice --json block frank
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "blocked" "block through the daemon (CLI)"
sc_ok alice unblock frank
SOTTO_BIN="$SOTTO" FRANK_HOME="$E2E_DIR/home/frank" MALLORY_HOME="$E2E_DIR/home/mallory" \
    python3 - "$HERE" "$SOCK" <<'PYEOF' || fail "daemon part"
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check

def send(home, who, to, text):
    env = dict(os.environ, XDG_DATA_HOME=home)
    env.pop("XDG_RUNTIME_DIR", None)
    subprocess.run([os.environ["SOTTO_BIN"], "--account", who, "send", to, text], env=env,
                   check=True, timeout=30, stdout=subprocess.DEVNULL)

def wait_body(r, body, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in r.events:
            ev = m["params"]["event"]
            if ev.get("body") == body:
                return ev
        r.wait_events(len(r.events) + 1, timeout=1)
    return None

r = Rpc(sys.argv[2])
res = r.call("subscribeReceive", {"account": "alice", "subscriber": "t"})
check("result" in res, "subscribe: %r" % res)
send(os.environ["FRANK_HOME"], "frank", "alice", "frank the stranger")
ev = wait_body(r, "frank the stranger")
check(ev is not None and ev.get("request") is True, "frank's event is a request: %r" % ev)
res = r.call("listRequests", {"account": "alice"})
check([x.get("conversation") for x in res["result"]].count("frank") == 1,
      "listRequests: %r" % res)
res = r.call("sendMessageRequestResponse", {"account": "alice", "recipient": "frank",
                                             "type": "accept"})
check(res.get("result", {}).get("type") == "accepted", "accept: %r" % res)
res = r.call("listRequests", {"account": "alice"})
check("frank" not in [x.get("conversation") for x in res["result"]], "after accept: %r" % res)
res = r.call("sendMessageRequestResponse", {"account": "alice", "groupId": "club",
                                             "type": "block"})
check(res.get("error", {}).get("code") == -32602, "block of a group: %r" % res)
res = r.call("block", {"account": "alice", "recipient": ["mallory"]})
check(res.get("result", {}).get("names") == ["mallory"], "block: %r" % res)
res = r.call("listBlocked", {"account": "alice"})
check([x["name"] for x in res["result"]] == ["carol", "dave", "mallory"], "listBlocked: %r" % res)
res = r.call("listContacts", {"account": "alice"})
c = {x["name"]: x for x in res["result"]}
check(c["mallory"]["blocked"] is True and c["frank"]["accepted"] is True, "listContacts: %r" % res)
send(os.environ["MALLORY_HOME"], "mallory", "alice", "mallory blocked via the daemon")
send(os.environ["FRANK_HOME"], "frank", "alice", "frank after mallory")
ev = wait_body(r, "frank after mallory")
check(ev is not None and not ev.get("request"), "frank after accept: %r" % ev)
time.sleep(1)
r.wait_events(len(r.events) + 1, timeout=1)
check(wait_body(r, "mallory blocked via the daemon", timeout=0.1) is None,
      "mallory's message while blocked was an event")
res = r.call("unblock", {"account": "alice", "recipient": "mallory"})
check(res.get("result", {}).get("changed") == 1, "unblock: %r" % res)
send(os.environ["MALLORY_HOME"], "mallory", "alice", "mallory unblocked")
ev = wait_body(r, "mallory unblocked")
check(ev is not None and not ev.get("request"), "mallory after unblock (accepted before): %r" % ev)
r.close()
PYEOF

log "7. a backup keeps accepted conversations and the block list"
bg_stop "$DAEMON_PID"
unset XDG_RUNTIME_DIR
sc_ok alice --json backup create "$E2E_DIR/alice.backup"
jfield recovery_code <"$E2E_DIR/last.out" >"$E2E_DIR/code.txt"
sc_in newalice "$E2E_DIR/code.txt" --json register --restore "$E2E_DIR/alice.backup"
assert_rc 0 "restore"
sc_ok newalice blocked
assert_eq "$(tr '\n' ' ' <"$E2E_DIR/last.out")" "carol dave " "the restored block list"
sc_ok newalice --json contacts
python3 -c '
import json, sys
c = {j["name"]: j for j in map(json.loads, filter(str.strip, open(sys.argv[1])))}
for n in ("bob", "mallory", "erin", "frank"):
    assert c[n]["accepted"] is True, (n, c)
assert c["carol"]["accepted"] is False and c["carol"]["blocked"] is True, c
' "$E2E_DIR/last.out" || fail "restored contacts: $(cat "$E2E_DIR/last.out")"
assert_eq "$(sqlite3 "$E2E_DIR/home/newalice/sotto/newalice/store.db" \
    "SELECT group_concat(accepted) FROM client_conversations WHERE conv_kind = 'group'")" "1,1" \
    "the restored groups are accepted"
log "ok"
