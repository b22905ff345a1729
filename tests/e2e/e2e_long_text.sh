#!/usr/bin/env bash
# Long texts (issue 11, docs/protocol.md "Long texts"): a text over 2 KiB
# (UTF-8 bytes) travels as a body cut on a code-point boundary plus the
# whole text as an encrypted attachment; the receiver shows the whole text.
#  - a 3 KiB emoji text (the 2048-byte cut falls inside a character)
#    round-trips whole through the CLI (receiver, sender's history, the
#    sender's linked laptop) and through the daemon;
#  - the whole text went as an attachment: the server got a blob, the
#    receiver keeps no file of it;
#  - exactly 64 KiB goes; 64 KiB + 1 is refused (argument and stdin) with
#    nothing stored or sent;
#  - a long send while the server is down stays queued (exit 3) and goes
#    with the next flush; its temporary file is gone afterwards.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
server_start
register alice
register bob

# same_body FILE TEXTFILE TYPE: 1 when an event of TYPE in FILE has exactly
# the contents of TEXTFILE as body (and no attachment), else 0
same_body() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
want = open(sys.argv[2], encoding="utf-8").read()
ok = 0
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    ev = json.loads(line)
    if ev.get("type") == sys.argv[3] and ev.get("body") == want and not ev.get("attachments"):
        ok = 1
print(ok)
PY
}
blobs() { find "$SERVER_DATA" -type f -path '*attach*' | wc -l | tr -d ' '; }
outbox() { # ACCOUNT: queued rows
    sqlite3 -batch "$E2E_DIR/home/$1/sotto/$1/store.db" "SELECT count(*) FROM client_outgoing"
}

# 'a' + 800 emoji (4 bytes each) + an ASCII tail: 3,215 bytes; byte 2048
# is inside an emoji, so a cut that is not on a code point breaks it
python3 -c 'import sys; sys.stdout.write("a" + "\U0001F600" * 800 + "-END-OF-LONG")' >"$E2E_DIR/long1.txt"
assert_eq "$(wc -c <"$E2E_DIR/long1.txt" | tr -d ' ')" "3213" "the long text's size"

log "contacts; alice links a laptop"
sc_ok alice send bob "hi bob"
receive_json bob "$E2E_DIR/b0.json"
link_device alice laptop
receive_json alice "$E2E_DIR/a0.json"
receive_json laptop "$E2E_DIR/l0.json"

log "3 KiB emoji text: whole at bob, in alice's history, on the laptop"
b0=$(blobs)
sc_in alice "$E2E_DIR/long1.txt" --json send bob -
assert_rc 0 "send the long text"
[ "$(blobs)" -gt "$b0" ] || fail "no attachment blob reached the server"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(same_body "$E2E_DIR/b1.json" "$E2E_DIR/long1.txt" message)" "1" "bob's event holds the whole text"
sc_ok bob --json history alice
assert_eq "$(same_body "$E2E_DIR/last.out" "$E2E_DIR/long1.txt" message)" "1" "bob's history"
assert_eq "$(find "$E2E_DIR/home/bob/sotto/bob/attachments" -type f | wc -l | tr -d ' ')" "0" \
    "bob keeps no file of the long text"
grep -q '"key"' <(sqlite3 -batch "$E2E_DIR/home/bob/sotto/bob/store.db" \
    "SELECT extra FROM client_messages WHERE body LIKE '%-END-OF-LONG'") &&
    fail "bob's row still holds the long text's key"
sc_ok alice --json history bob
assert_eq "$(same_body "$E2E_DIR/last.out" "$E2E_DIR/long1.txt" outgoing)" "1" "alice's own history"
receive_json laptop "$E2E_DIR/l1.json"
assert_eq "$(same_body "$E2E_DIR/l1.json" "$E2E_DIR/long1.txt" outgoing)" "1" "the laptop's sync copy"

log "exactly 64 KiB goes; 64 KiB + 1 is refused before anything is stored or sent"
python3 -c 'import sys; sys.stdout.write("\u00e9" * 32767 + "xy")' >"$E2E_DIR/max.txt"
assert_eq "$(wc -c <"$E2E_DIR/max.txt" | tr -d ' ')" "65536" "64 KiB file"
sc_in alice "$E2E_DIR/max.txt" send bob -
assert_rc 0 "send 64 KiB"
receive_json bob "$E2E_DIR/b2.json"
assert_eq "$(same_body "$E2E_DIR/b2.json" "$E2E_DIR/max.txt" message)" "1" "bob got 64 KiB whole"
python3 -c 'import sys; sys.stdout.write("\u00e9" * 32767 + "xyz")' >"$E2E_DIR/over.txt"
rows_before=$(sqlite3 -batch "$E2E_DIR/home/alice/sotto/alice/store.db" "SELECT count(*) FROM client_messages")
b0=$(blobs)
sc_in alice "$E2E_DIR/over.txt" send bob -
assert_rc 2 "64 KiB + 1 on stdin"
sc alice send bob "$(cat "$E2E_DIR/over.txt")"
assert_rc 2 "64 KiB + 1 as an argument"
grep -q "longer than 65536" "$E2E_DIR/last.err" || fail "refusal text: $(cat "$E2E_DIR/last.err")"
assert_eq "$(sqlite3 -batch "$E2E_DIR/home/alice/sotto/alice/store.db" "SELECT count(*) FROM client_messages")" \
    "$rows_before" "no history row for the refused text"
assert_eq "$(outbox alice)" "0" "nothing queued"
assert_eq "$(blobs)" "$b0" "nothing uploaded"
receive_json bob "$E2E_DIR/b3.json"
assert_eq "$(events message "$E2E_DIR/b3.json" | wc -l | tr -d ' ')" "0" "bob got nothing"

log "offline: a long send stays queued and goes with the next flush"
python3 -c 'import sys; sys.stdout.write("offline " + "\u2603" * 1000 + " done")' >"$E2E_DIR/long2.txt"
server_stop
sc_in alice "$E2E_DIR/long2.txt" send bob -
assert_rc 3 "long send without the server"
[ "$(outbox alice)" -ge 1 ] || fail "the long send is not queued"
ls "$E2E_DIR/home/alice/sotto/alice"/.longtext-* >/dev/null 2>&1 ||
    fail "the queued long text has no file to upload"
server_restart
sc_ok alice flush
assert_eq "$(outbox alice)" "0" "sent by flush"
ls "$E2E_DIR/home/alice/sotto/alice"/.longtext-* >/dev/null 2>&1 &&
    fail "the long text's temporary file stayed after the upload"
receive_json bob "$E2E_DIR/b4.json"
assert_eq "$(same_body "$E2E_DIR/b4.json" "$E2E_DIR/long2.txt" message)" "1" "bob got the queued long text"

log "a long text whose blob was damaged on the server: the short body stays, with an error"
blob_list() { find "$SERVER_DATA" -type f -path '*attach*' | sort; }
before=$(blob_list)
python3 -c 'import sys; sys.stdout.write("damaged " + "\u00fc" * 1500 + " TAIL-NEVER-SHOWN")' >"$E2E_DIR/long4.txt"
sc_in alice "$E2E_DIR/long4.txt" send bob -
assert_rc 0 "send the long text to be damaged"
blob=$(comm -13 <(echo "$before") <(blob_list) | grep -v '^$')
[ -n "$blob" ] || fail "no blob for the long text"
python3 -c '
import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    data = f.read(); off = len(data) // 2
    f.seek(off); f.write(bytes([data[off] ^ 0x01]))
' "$blob"
sc bob --json receive
assert_rc 7 "receive with a damaged long text (exit 7: verification failed)"
cp "$E2E_DIR/last.out" "$E2E_DIR/b5.json"
python3 - "$E2E_DIR/b5.json" <<'PY' || fail "damaged long text: $(head -c 600 "$E2E_DIR/b5.json")"
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
msgs = [m for m in msgs if m.get("type") == "message"]
assert len(msgs) == 1, msgs
m = msgs[0]
assert m["body"].startswith("damaged ") and len(m["body"].encode()) <= 2048, m["body"][:40]
assert "TAIL-NEVER-SHOWN" not in m["body"]
a = m.get("attachments") or []
assert len(a) == 1 and a[0]["file_name"] == "long text" and a[0]["error"], a
PY
grep -q '"key"' <(sqlite3 -batch "$E2E_DIR/home/bob/sotto/bob/store.db" \
    "SELECT extra FROM client_messages WHERE body LIKE 'damaged %'") &&
    fail "the damaged long text's key was kept"
assert_eq "$(find "$E2E_DIR/home/bob/sotto/bob/attachments" -type f | wc -l | tr -d ' ')" "0" \
    "nothing of the damaged long text written"

log "the daemon: send a long text, bob's event holds it whole"
daemon_start bob
SOCK="$SOCK" LONG="$E2E_DIR/long1.txt" SOTTO="$SOTTO" HOME_ALICE="$E2E_DIR/home/alice" \
    python3 - "$HERE" <<'PY' || fail "daemon long text"
import os, subprocess, sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check
text = open(os.environ["LONG"], encoding="utf-8").read()
r = Rpc(os.environ["SOCK"])
r.call("subscribeReceive", {"account": "bob", "subscriber": "lt"})
# bob -> alice through the daemon
m = r.call("send", {"account": "bob", "recipient": "alice", "message": "from bob " + text})
check(m.get("result", {}).get("type") == "sent", "send: %r" % m)
# alice -> bob by the CLI; bob's daemon shows it whole
env = dict(os.environ, XDG_DATA_HOME=os.environ["HOME_ALICE"])
subprocess.run([os.environ["SOTTO"], "--account", "alice", "send", "bob", "to bob " + text],
               env=env, check=True, stdout=subprocess.DEVNULL, timeout=30)
ok = False
for _ in range(20):
    r.wait_events(len(r.events) + 1, timeout=3)
    for e in r.events:
        ev = e["params"]["event"]
        if ev.get("type") == "message" and ev.get("body") == "to bob " + text:
            ok = True
    if ok:
        break
check(ok, "no whole long text among the daemon's events: %r" %
      [e["params"]["event"].get("body", "")[:40] for e in r.events])
PY
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
receive_json alice "$E2E_DIR/a5.json"
python3 -c 'import sys; sys.stdout.write("from bob " + open(sys.argv[1], encoding="utf-8").read())' \
    "$E2E_DIR/long1.txt" >"$E2E_DIR/long3.txt"
assert_eq "$(same_body "$E2E_DIR/a5.json" "$E2E_DIR/long3.txt" message)" "1" "alice got bob's daemon long text"

log "ok"
