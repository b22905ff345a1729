#!/usr/bin/env bash
# Reactions, replies, mentions, edits and deletes for everyone (issue 11,
# docs/cli.md "Reactions, replies, mentions, edits, deletes"), with a real
# server and real clients: alice (and her linked device alice2), bob, carol.
#  1. reactions: one per person per message, replaced and removed; a bad
#     emoji is refused; the same reaction twice, and an older reaction that
#     arrives after a newer one (the server's queue reordered), leave one,
#     the newest;
#  2. replies carry the quoted author and excerpt (<= 200 bytes, cut on a
#     character), also when the original is not in the receiver's history
#     (a group message from before carol joined);
#  3. mentions in a group: "@name" of members found by themselves, explicit
#     START:LENGTH:NAME, a non-member refused;
#  4. edits: the newest version shown on every device (linked device too),
#     every version kept (`sotto edits`, daemon `listEdits`), others' and
#     old (> 24 h) messages refused; an edit that arrives before its message;
#  5. deletes for everyone: 1:1 and group, through the daemon too, the text
#     gone from every store file (database and WAL) of every device, a
#     tombstone left; a delete that arrives before its message, an edit
#     that arrives after the delete.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
# delivery receipts (receipts.c) due at once: a one-shot receive does not
# wait out their random delay (docs/cli.md "Test hooks")
export SOTTO_TEST_RECEIPT_DELAY_MS=0

server_start
register_all alice bob carol

log "alice links a second device (alice2)"
link_device alice alice2
sc_ok alice flush
sc_ok alice2 receive

# sent_ts: the timestamp of the last `--json send` (its message id)
sent_ts() { jfield timestamp <"$E2E_DIR/last.out" | head -1; }

# msg USER FIELD TS CONV...: FIELD (JSON) of message TS in USER's `history CONV...`
msg() {
    local who=$1 field=$2 ts=$3
    shift 3
    sc_ok "$who" --json history "$@"
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    ev = json.loads(line)
    if ev.get("timestamp") == int(sys.argv[2]) and ev.get("type") in ("message", "outgoing"):
        v = ev
        for k in sys.argv[3].split("."):
            v = v.get(k) if isinstance(v, dict) else None
        print(json.dumps(v, ensure_ascii=False, sort_keys=True))
        break
else:
    print("NO-SUCH-MESSAGE")
' "$E2E_DIR/last.out" "$ts" "$field"
}

# reverse_queue USER: reverses the order of USER's queued envelopes on the
# server (every device): the server delivers them newest first
reverse_queue() {
    python3 - "$SERVER_DATA/sottod.db" "$1" <<'PY' || fail "reverse_queue $1"
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=10)
(acc,) = con.execute("SELECT id FROM accounts WHERE username = ?", (sys.argv[2],)).fetchone()
with con:
    devs = [d for (d,) in con.execute(
        "SELECT DISTINCT device_id FROM envelopes WHERE account_id = ?", (acc,))]
    for d in devs:
        rows = con.execute("SELECT seq, envelope_id, expires_at, body FROM envelopes"
                           " WHERE account_id = ? AND device_id = ? ORDER BY seq", (acc, d)).fetchall()
        if len(rows) < 2:
            raise SystemExit("only %d envelope(s) queued for %s device %d" % (len(rows), sys.argv[2], d))
        for (seq, _, _, _) in rows:
            con.execute("UPDATE envelopes SET envelope_id = ? WHERE seq = ?", (os.urandom(16), seq))
        for (seq, _, _, _), (_, eid, exp, body) in zip(rows, reversed(rows)):
            con.execute("UPDATE envelopes SET envelope_id = ?, expires_at = ?, body = ?"
                        " WHERE seq = ?", (eid, exp, body, seq))
print("reversed")
PY
}

# store_hits USER TEXT: occurrences of TEXT in USER's store files (db, WAL)
store_hits() {
    local n=0 f
    for f in "$E2E_DIR"/home/"$1"/sotto/"$1"/store.db*; do
        [ -f "$f" ] || continue
        n=$((n + $(grep -c -a -F -- "$2" "$f" || true)))
    done
    echo "$n"
}
# store files are where we think they are (else store_hits proves nothing)
for u in alice bob; do
    ls "$E2E_DIR/home/$u/sotto/$u/store.db" >/dev/null 2>&1 ||
        fail "no store.db for $u: $(find "$E2E_DIR/home/$u" -name 'store.db*')"
done

log "a first exchange (sessions both ways)"
sc_ok bob send alice "hi alice"
sc_ok alice receive
sc_ok alice2 receive
sc_ok alice --json send bob "hello bob"
T1=$(sent_ts)
sc_ok bob receive
sc_ok alice2 receive

log "1. reactions"
sc bob react alice --target-author alice --target-timestamp "$T1" "hello"
assert_rc 2 "a word is not an emoji"
sc bob react alice --target-author alice --target-timestamp 12345 "👍"
assert_rc 6 "a reaction to a message that is not there"
sc_ok bob --json react alice --target-author alice --target-timestamp "$T1" "👍"
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "reaction" "react result"
receive_json alice "$E2E_DIR/a1.json"
ev=$(events reaction "$E2E_DIR/a1.json")
assert_eq "$(jfield emoji <<<"$ev")" "👍" "alice sees bob's reaction"
assert_eq "$(jfield target.timestamp <<<"$ev")" "$T1" "reaction target"
reacts() { msg "$1" reactions "$2" "${@:3}" | python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
print(" ".join("%s:%s" % (r["from"], r["emoji"]) for r in (v or [])))'; }
assert_eq "$(reacts alice "$T1" bob)" "bob:👍" "alice's history: one reaction"
assert_eq "$(reacts bob "$T1" alice)" "bob:👍" "bob's history: his own reaction"
sc_ok bob react alice --target-author alice --target-timestamp "$T1" "❤️"
sc_ok alice receive
assert_eq "$(reacts alice "$T1" bob)" "bob:❤️" "replaced, not added"
sc_ok bob react alice --target-author alice --target-timestamp "$T1" --remove
sc_ok alice receive
assert_eq "$(reacts alice "$T1" bob)" "" "removed"
sc_ok alice2 receive
assert_eq "$(reacts alice2 "$T1" bob)" "" "alice2: bob's reaction came and went"
log "the same reaction twice, and an older reaction after a newer one"
sc_ok bob react alice --target-author alice --target-timestamp "$T1" "👍"
sc_ok bob react alice --target-author alice --target-timestamp "$T1" "🎉"
sc_ok bob react alice --target-author alice --target-timestamp "$T1" "🎉"
reverse_queue alice
receive_json alice "$E2E_DIR/a2.json"
assert_eq "$(reacts alice "$T1" bob)" "bob:🎉" "the newest reaction wins whatever the order"
sc_ok alice react bob --target-author alice --target-timestamp "$T1" "😀"
sc_ok bob receive
assert_eq "$(reacts bob "$T1" alice)" "bob:🎉 alice:😀" "one reaction per person"
sc_ok alice2 receive
assert_eq "$(reacts alice2 "$T1" bob)" "bob:🎉 alice:😀" "alice2 got alice's own reaction (sync)"

log "2. replies"
long=$(python3 -c 'print("é" * 150)') # 300 bytes: the excerpt is cut to 200 on a character
sc_ok alice --json send bob "$long"
TL=$(sent_ts)
sc_ok bob receive
sc bob send alice --quote-timestamp 999 --quote-author alice "reply to nothing"
assert_rc 6 "a reply to a message not in the history"
sc bob send alice --quote-timestamp "$TL" "no author"
assert_rc 2 "a reply needs the author"
sc_ok bob --json send alice --quote-timestamp "$TL" --quote-author alice "a reply"
TR=$(sent_ts)
receive_json alice "$E2E_DIR/a3.json"
q=$(events message "$E2E_DIR/a3.json" | grep '"a reply"')
assert_eq "$(jfield timestamp <<<"$q")" "$TR" "the reply's id"
assert_eq "$(jfield quote.author <<<"$q")" "alice" "quoted author"
assert_eq "$(jfield quote.timestamp <<<"$q")" "$TL" "quoted timestamp"
assert_eq "$(jfield quote.text <<<"$q")" "$(python3 -c 'print("é" * 100)')" "excerpt: 200 bytes"
log "carol gets a reply quoting a message she never had"
sc_ok alice --json group create "team" bob
GID=$(jfield id <"$E2E_DIR/last.out")
sc_ok bob receive
sc_ok alice --json send --group "$GID" "before carol came"
TQ=$(sent_ts)
sc_ok alice group add team carol
sc_ok bob receive
sc_ok carol receive
sc_ok alice2 receive
sc bob send alice --quote-timestamp "$TQ" --quote-author alice "wrong conversation"
assert_rc 6 "a reply quotes a message of the same conversation"
sc_ok bob --json send --group "$GID" --quote-timestamp "$TQ" --quote-author alice "told you"
receive_json carol "$E2E_DIR/c1.json"
sc_ok carol --json history --group team
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "before carol came")" "0" "carol never had it"
q=$(events message "$E2E_DIR/c1.json" | grep '"told you"')
assert_eq "$(jfield quote.text <<<"$q")" "before carol came" \
    "carol sees the excerpt of a message she never had"

log "3. mentions"
sc_ok alice --json send --group team "hi @bob and @carol, not @dave or e@bob"
TM=$(sent_ts)
receive_json bob "$E2E_DIR/b3.json"
m=$(events message "$E2E_DIR/b3.json" | grep '"hi @bob')
assert_eq "$(jfield mentions <<<"$m")" \
    '[{"length": 4, "name": "bob", "start": 3}, {"length": 6, "name": "carol", "start": 12}]' \
    "mentions found by themselves"
assert_eq "$(jfield mentions_me <<<"$m")" "true" "bob is mentioned"
sc alice send --group team --mention 0:5:dave "hello team"
assert_rc 2 "a mention of a non-member"
sc alice send --group team --mention 0:50:carol "hello team"
assert_rc 2 "a mention outside the text"
sc_ok alice send --group team --mention 6:4:carol --no-mentions "hello team @bob"
receive_json carol "$E2E_DIR/c2.json"
m=$(events message "$E2E_DIR/c2.json" | grep '"hello team @bob"')
assert_eq "$(jfield mentions <<<"$m")" '[{"length": 4, "name": "carol", "start": 6}]' "explicit mention only"
assert_eq "$(jfield mentions_me <<<"$m")" "true" "carol is mentioned"
receive_json bob "$E2E_DIR/b4.json"
m=$(events message "$E2E_DIR/b4.json" | grep '"hello team @bob"')
assert_eq "$(jfield mentions_me <<<"$m")" "false" "bob is not"
log "a reaction in the group reaches every member"
sc_ok carol receive
sc_ok carol react --group team --target-author alice --target-timestamp "$TM" "👀"
sc_ok alice receive
sc_ok bob receive
assert_eq "$(reacts alice "$TM" --group team)" "carol:👀" "alice sees carol's reaction"
assert_eq "$(reacts bob "$TM" --group team)" "carol:👀" "bob sees carol's reaction"

log "4. edits"
sc_ok alice --json send bob "version one"
T2=$(sent_ts)
sc_ok bob receive
sc_ok alice --json send bob --edit-timestamp "$T2" "version two"
assert_eq "$(jfield edit_of <"$E2E_DIR/last.out")" "$T2" "edit result"
sc_ok alice send bob --edit-timestamp "$T2" "version three"
receive_json bob "$E2E_DIR/b5.json"
assert_eq "$(events edit "$E2E_DIR/b5.json" | jfield body | tr '\n' '|')" "version two|version three|" \
    "bob's edit events"
assert_eq "$(msg bob body "$T2" alice)" '"version three"' "bob shows the newest version"
assert_eq "$(msg bob edited "$T2" alice)" "true" "marked edited"
assert_eq "$(msg alice body "$T2" bob)" '"version three"' "alice shows it too"
sc_ok alice2 receive
assert_eq "$(msg alice2 body "$T2" bob)" '"version three"' "alice's linked device shows it"
sc_ok bob --json edits alice "$T2"
assert_eq "$(jfield body <"$E2E_DIR/last.out" | tr '\n' '|')" "version one|version two|version three|" \
    "bob keeps every version"
assert_eq "$(jfield original <"$E2E_DIR/last.out" | tr '\n' '|')" "true|false|false|" "the original first"
assert_eq "$(jfield current <"$E2E_DIR/last.out" | tr '\n' '|')" "false|false|true|" "the newest shown"
sc_ok alice2 --json edits bob "$T2"
assert_eq "$(jfield body <"$E2E_DIR/last.out" | tr '\n' '|')" "version one|version two|version three|" \
    "alice2 keeps every version"
sc bob send alice --edit-timestamp "$T2" "bob's edit"
assert_rc 6 "bob cannot edit alice's message"
SOTTO_TEST_CLOCK_OFFSET_MS=90000000 sc alice send bob --edit-timestamp "$T2" "too late"
assert_rc 2 "an edit after 24 hours"
SOTTO_TEST_CLOCK_OFFSET_MS=90000000 sc alice delete bob --target-timestamp "$T2"
assert_rc 2 "a delete after 24 hours"

log "an edit that arrives before its message"
sc_ok alice --json send bob "orig three"
T3=$(sent_ts)
sc_ok alice send bob --edit-timestamp "$T3" "edited three"
reverse_queue bob
receive_json bob "$E2E_DIR/b6.json"
assert_eq "$(msg bob body "$T3" alice)" '"edited three"' "the edit applied when the message came"
sc_ok bob --json edits alice "$T3"
assert_eq "$(jfield body <"$E2E_DIR/last.out" | tr '\n' '|')" "orig three|edited three|" "versions"

log "5. delete for everyone"
sc bob delete alice --target-timestamp "$T2"
assert_rc 6 "bob cannot delete alice's message"
sc_ok alice --json delete bob --target-timestamp "$T2"
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "deleted" "delete result"
receive_json bob "$E2E_DIR/b7.json"
assert_eq "$(events delete "$E2E_DIR/b7.json" | jfield target.timestamp)" "$T2" "bob's delete event"
assert_eq "$(msg bob deleted "$T2" alice)" "true" "a tombstone at bob"
assert_eq "$(msg bob body "$T2" alice)" '""' "no text at bob"
sc_ok alice2 receive
assert_eq "$(msg alice2 deleted "$T2" bob)" "true" "a tombstone at alice2"
assert_eq "$(msg alice deleted "$T2" bob)" "true" "a tombstone at alice"
sc bob --json edits alice "$T2"
assert_rc 6 "no versions of a deleted message"
for u in alice alice2 bob; do
    for t in "version one" "version two" "version three"; do
        assert_eq "$(store_hits "$u" "$t")" "0" "[$t] in $u's store files"
    done
done
sc alice send bob --edit-timestamp "$T2" "after delete"
assert_rc 6 "no edit of a deleted message"

log "a delete that arrives before its message"
sc_ok alice --json send bob "secret four"
T4=$(sent_ts)
sc_ok alice delete bob --target-timestamp "$T4"
reverse_queue bob
receive_json bob "$E2E_DIR/b8.json"
assert_eq "$(msg bob deleted "$T4" alice)" "true" "deleted as it came"
assert_eq "$(store_hits bob "secret four")" "0" "[secret four] in bob's store files"

log "an edit that arrives after the delete"
sc_ok alice --json send bob "five"
T5=$(sent_ts)
sc_ok bob receive
sc_ok alice send bob --edit-timestamp "$T5" "edit of five"
sc_ok alice delete bob --target-timestamp "$T5"
reverse_queue bob
python3 "$HERE/replay.py" "$SERVER_DATA/sottod.db" save "$E2E_DIR/q9.json" >/dev/null ||
    fail "replay.py save"
receive_json bob "$E2E_DIR/b9.json"
assert_eq "$(msg bob deleted "$T5" alice)" "true" "deleted"
assert_eq "$(msg bob body "$T5" alice)" '""' "the late edit changed nothing"
assert_eq "$(store_hits bob "edit of five")" "0" "[edit of five] in bob's store files"
log "the same envelopes replayed (fresh envelope ids): nothing changes"
python3 "$HERE/replay.py" "$SERVER_DATA/sottod.db" restore "$E2E_DIR/q9.json" --new-id >/dev/null ||
    fail "replay.py restore"
receive_json bob "$E2E_DIR/b9r.json"
assert_eq "$(grep -c '"type": *"\(edit\|delete\|message\)"' "$E2E_DIR/b9r.json")" "0" "no event from the replay"
assert_eq "$(msg bob deleted "$T5" alice)" "true" "still deleted"
assert_eq "$(store_hits bob "edit of five")" "0" "[edit of five] in bob's store files after the replay"

log "a group message deleted through the daemon; a reply quoting it loses the excerpt"
sc_ok alice --json send --group team "group secret"
TG=$(sent_ts)
sc_ok bob receive
sc_ok carol receive
sc_ok bob send --group team --quote-timestamp "$TG" --quote-author alice "re: that"
sc_ok carol receive
sc_ok alice receive
daemon_start alice
SOCK="$SOCK" python3 - "$HERE" "$GID" "$TG" "$T3" <<'PY' || fail "daemon methods"
import json, os, sys
sys.path.insert(0, sys.argv[1])
from rpc import Rpc, check
gid, tg, t3 = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = Rpc(os.environ["SOCK"])
v = r.call("listEdits", {"recipient": "bob", "targetTimestamp": t3})
bodies = [x["body"] for x in v["result"]]
check(bodies == ["orig three", "edited three"], "listEdits: %r" % v)
v = r.call("sendReaction", {"groupId": gid, "emoji": "🔥", "targetAuthor": "alice",
                            "targetTimestamp": tg})
check(v.get("result", {}).get("type") == "reaction", "sendReaction: %r" % v)
v = r.call("remoteDelete", {"groupId": gid, "targetTimestamp": tg})
check(v.get("result", {}).get("type") == "deleted", "remoteDelete: %r" % v)
v = r.call("remoteDelete", {"groupId": gid, "targetTimestamp": tg})
check(v.get("error", {}).get("code") == 6, "remoteDelete twice: %r" % v)
v = r.call("send", {"recipient": "bob", "message": "via daemon", "quoteTimestamp": t3,
                    "quoteAuthor": "alice", "quoteMessage": "ignored"})
check(v.get("result", {}).get("type") == "sent", "send with a quote: %r" % v)
r.close()
PY
kill -TERM "$DAEMON_PID" 2>/dev/null || true
wait "$DAEMON_PID" 2>/dev/null || true
for u in bob carol alice2; do
    sc_ok "$u" receive
    assert_eq "$(msg "$u" deleted "$TG" --group team)" "true" "group message deleted at $u"
    assert_eq "$(store_hits "$u" "group secret")" "0" "[group secret] in $u's store files"
done
assert_eq "$(store_hits alice "group secret")" "0" "[group secret] in alice's store files"
sc_ok carol --json history --group team
rq=$(grep '"re: that"' "$E2E_DIR/last.out")
assert_eq "$(jfield quote.author <<<"$rq")" "alice" "the reply still names the quoted author"
assert_eq "$(jfield quote.text <<<"$rq")" "" "and no longer its text"
sc_ok bob --json history alice
q=$(grep '"via daemon"' "$E2E_DIR/last.out")
assert_eq "$(jfield quote.text <<<"$q")" "edited three" "the daemon's reply quotes the shown text"

log "ok"
