#!/usr/bin/env bash
# A hostile server operator against issue 11 (everyday messaging):
#  1. a profile rolled back to an older ciphertext of the same user is
#     refused and the newer name stays (the profile carries its time);
#     a newer profile set on a linked device whose clock is behind opens;
#  2. a typing indicator the server held back (delivered late) is not
#     shown as "typing" now; a fresh one is;
#  3. long-text blobs swapped between messages, or replaced by a big random
#     blob, are refused (digest) and the short body stays; the real one shows;
#  4. receipts delivered in reverse order (read before delivered) and
#     replayed with fresh envelope ids: the state stays "read";
#  5. an old timer update replayed with a fresh envelope id changes nothing;
#     two timer updates delivered in reverse order: the newer one wins;
#  6. after profiles, reactions, edits, long texts and timers, no plaintext
#     (names, emoji, texts) is in the server's files (db, WAL) or logs.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
export SOTTO_TEST_RECEIPT_DELAY_MS=0
server_start
register alice
register bob
sc_ok bob send alice "hi alice"
sc_ok alice send bob "hi bob"
receive_json alice "$E2E_DIR/a0.json"
receive_json bob "$E2E_DIR/b0.json"

sent_ts() { jfield timestamp <"$E2E_DIR/last.out"; }
alice_profile_hex() {
    server_sql "SELECT hex(p.ciphertext) FROM profiles p JOIN accounts a ON a.id = p.account_id
                WHERE a.username = 'alice'"
}
reverse_queue() { # USER: reverses the order of USER's queued envelopes
    python3 - "$SERVER_DATA/sottod.db" "$1" <<'PY' || fail "reverse_queue $1"
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=10)
(acc,) = con.execute("SELECT id FROM accounts WHERE username = ?", (sys.argv[2],)).fetchone()
with con:
    devs = [d for (d,) in con.execute(
        "SELECT DISTINCT device_id FROM envelopes WHERE account_id = ?", (acc,))]
    for d in devs:
        rows = con.execute("SELECT seq, envelope_id, expires_at, body FROM envelopes"
                           " WHERE account_id = ? AND device_id = ? ORDER BY seq",
                           (acc, d)).fetchall()
        if len(rows) < 2:
            raise SystemExit("only %d envelope(s) queued for %s/%d" % (len(rows), sys.argv[2], d))
        for (seq, _, _, _) in rows:
            con.execute("UPDATE envelopes SET envelope_id = ? WHERE seq = ?",
                        (os.urandom(16), seq))
        for (seq, _, _, _), (_, eid, exp, body) in zip(rows, reversed(rows)):
            con.execute("UPDATE envelopes SET envelope_id = ?, expires_at = ?, body = ?"
                        " WHERE seq = ?", (eid, exp, body, seq))
PY
}

log "1. profile rollback: an older ciphertext of alice's own profile"
sc_ok alice profile set --name "Old Name Rollback"
old=$(alice_profile_hex)
[ -n "$old" ] || fail "no profile row for alice"
sc_ok alice profile set --name "New Name Rollback"
sc_ok alice send bob "profile key"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(events message "$E2E_DIR/b1.json" | jfield display_name)" "New Name Rollback" \
    "bob sees the new name"
server_sql "UPDATE profiles SET ciphertext = X'$old'
            WHERE account_id = (SELECT id FROM accounts WHERE username = 'alice')"
sc bob --json profile show alice
assert_rc 7 "a rolled-back profile is refused"
grep -q "older" "$E2E_DIR/last.err" || fail "clear error: $(cat "$E2E_DIR/last.err")"
if grep -q "Old Name" "$E2E_DIR/last.out"; then fail "the old name was shown"; fi
sc_ok bob --json contacts
assert_eq "$(grep '"name":"alice"' "$E2E_DIR/last.out" | jfield profile_name)" "New Name Rollback" \
    "the newer name stays after a rollback"
sc_ok alice profile set --name "Newest Name Rollback"
sc_ok bob --json profile show alice
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "Newest Name Rollback" "a newer one opens"

log "1b. alice's laptop, its clock an hour behind, sets a newer profile: it opens"
link_device alice laptop
sc_ok alice receive
sc_ok laptop receive
sc_ok alice profile set --name "Phone Name Skew"
sc_ok laptop receive
sc_ok bob --json profile show alice
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "Phone Name Skew" "bob saw the phone's"
SOTTO_TEST_CLOCK_OFFSET_MS=-3600000 sc_ok laptop profile set --name "Laptop Name Skew"
sc_ok bob --json profile show alice
assert_eq "$(jfield display_name <"$E2E_DIR/last.out")" "Laptop Name Skew" \
    "a later profile from a device whose clock is behind is not taken for a rollback"
sc_ok alice receive

log "2. a typing indicator held back by the server is not shown late"
sc_ok alice --json typing bob
assert_eq "$(jfield sent <"$E2E_DIR/last.out")" "true" "typing sent"
SOTTO_TEST_CLOCK_OFFSET_MS=40000 sc_ok bob --json receive
assert_eq "$(events typing "$E2E_DIR/last.out" | wc -l | tr -d ' ')" "0" \
    "a 40 s old typing indicator is not shown"
sc_ok alice --json typing bob
sc_ok bob --json receive
assert_eq "$(events typing "$E2E_DIR/last.out" | jfield action)" "started" "a fresh one is shown"
sc_ok alice typing bob --stop
sc_ok bob receive

log "3. long-text blobs swapped or replaced by the server"
blob_ids() { server_sql "SELECT hex(id) FROM attachments ORDER BY hex(id)"; }
blob_file() { find "$SERVER_DATA/attachments" -type f -iname "$1*" | head -n 1; }
ids=()
send_long() { # FILE: alice sends it to bob; its timestamp in $ts, its blob id appended to ids
    local before after
    before=$(blob_ids)
    sc_ok alice --json send bob "$(cat "$1")"
    ts=$(sent_ts)
    after=$(blob_ids)
    ids+=("$(comm -13 <(echo "$before") <(echo "$after"))")
}
for i in 1 2 3 4; do
    case $i in 1) w=LONGONE e='\U0001F42C' ;; 2) w=LONGTWO e='\U0001F433' ;; 3) w=LONGTRE e='\U0001F40B' ;; 4) w=LONGFOR e='\U0001F41F' ;; esac
    python3 -c "import sys; sys.stdout.write('$w ' + '$e' * 700)" >"$E2E_DIR/l$i.txt"
done
send_long "$E2E_DIR/l1.txt"
t1=$ts
send_long "$E2E_DIR/l2.txt"
t2=$ts
send_long "$E2E_DIR/l3.txt"
t3=$ts
send_long "$E2E_DIR/l4.txt"
t4=$ts
assert_eq "${#ids[@]} $(printf '%s\n' "${ids[@]}" | grep -c .)" "4 4" "four long-text blobs uploaded"
f1=$(blob_file "${ids[0]}")
f2=$(blob_file "${ids[1]}")
f3=$(blob_file "${ids[2]}")
for f in "$f1" "$f2" "$f3"; do
    [ -f "$f" ] || fail "blob files: $f1 $f2 $f3"
done
cp "$f2" "$f1" # message 1 gets message 2's blob (same size)
head -c $((2 * 1024 * 1024)) /dev/urandom >"$f3"
server_sql "UPDATE attachments SET size = $((2 * 1024 * 1024)) WHERE hex(id) = '${ids[2]}'"
sc bob --json receive
sc_ok bob --json history alice
python3 - "$E2E_DIR/last.out" "$t1" "$t2" "$t3" "$t4" "$E2E_DIR"/l{1,2,3,4}.txt <<'PY' ||
import json, sys
rows = {}
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line:
        ev = json.loads(line)
        rows[ev.get("timestamp")] = ev.get("body", "")
t = [int(x) for x in sys.argv[2:6]]
texts = [open(p, encoding="utf-8").read() for p in sys.argv[6:10]]
bad = []
if rows.get(t[0]) == texts[1] or len(rows.get(t[0], "").encode()) > 2048:
    bad.append("message 1 shows a swapped blob")
if rows.get(t[1]) != texts[1]:
    bad.append("message 2 (its own blob) not whole")
if len(rows.get(t[2], "").encode()) > 2048:
    bad.append("message 3 shows a replaced blob")
if rows.get(t[3]) != texts[3]:
    bad.append("message 4 (untouched) not whole")
if not rows.get(t[0], "").startswith("LONGONE") or not rows.get(t[2], "").startswith("LONGTRE"):
    bad.append("the short bodies of the refused ones are gone")
if bad:
    print("; ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
    fail "long-text blob swap"

log "4. receipts reversed (read before delivered) and replayed"
sc_ok alice --json send bob "receipt target"
tr1=$(sent_ts)
sc_ok bob receive
sc_ok bob read alice "$tr1"
python3 "$HERE/replay.py" "$SERVER_DATA/sottod.db" save "$E2E_DIR/q4.json" >/dev/null ||
    fail "replay.py save"
reverse_queue alice
sc_ok alice receive
sc_ok alice --json receipts bob "$tr1"
state() { jfield receipts <"$E2E_DIR/last.out" | python3 -c 'import json,sys; print(",".join(r["state"] for r in json.load(sys.stdin)))'; }
assert_eq "$(state)" "read" "read wins over a later delivery receipt"
python3 "$HERE/replay.py" "$SERVER_DATA/sottod.db" restore "$E2E_DIR/q4.json" --new-id >/dev/null ||
    fail "replay.py restore"
sc alice receive
sc_ok alice --json receipts bob "$tr1"
assert_eq "$(state)" "read" "replayed receipts change nothing"

log "5. an old timer update replayed with a fresh envelope id"
sc_ok alice timer bob 1h
python3 "$HERE/replay.py" "$SERVER_DATA/sottod.db" save "$E2E_DIR/q5.json" >/dev/null ||
    fail "replay.py save"
sc_ok bob receive
sc_ok alice timer bob off
sc_ok bob receive
timers() { sqlite3 -batch "$E2E_DIR/home/bob/sotto/bob/store.db" "SELECT count(*) FROM client_messages WHERE kind = 'timer'"; }
n_timers=$(timers)
python3 "$HERE/replay.py" "$SERVER_DATA/sottod.db" restore "$E2E_DIR/q5.json" --new-id >/dev/null ||
    fail "replay.py restore"
sc bob receive
assert_eq "$(sqlite3 -batch "$E2E_DIR/home/bob/sotto/bob/store.db" \
    "SELECT expire_s FROM client_conversations WHERE conv_kind = 'contact' AND conv = 'alice'")" "0" \
    "the timer stays off"
assert_eq "$(timers)" "$n_timers" "no timer row from the replay"

log "5b. two timer changes delivered in reverse order: the newer one wins"
sc_ok alice timer bob 1h
sc_ok alice timer bob 5m
reverse_queue bob
sc_ok bob receive
assert_eq "$(sqlite3 -batch "$E2E_DIR/home/bob/sotto/bob/store.db" \
    "SELECT expire_s FROM client_conversations WHERE conv_kind = 'contact' AND conv = 'alice'")" "300" \
    "the newer timer (5m) stays"
sc_ok alice timer bob off
sc_ok bob receive

log "6. reactions and edits; then no plaintext in the server's files or logs"
sc_ok alice --json send bob "original text PLAINORIG"
te=$(sent_ts)
sc_ok alice send bob --edit-timestamp "$te" "edited text PLAINEDIT"
sc_ok bob receive
sc_ok bob react alice --target-author alice --target-timestamp "$te" "🧿"
sc_ok alice receive
sc_ok alice --json history bob
grep -q "🧿" "$E2E_DIR/last.out" || fail "the reaction reached alice"
needles=("Old Name Rollback" "New Name Rollback" "Newest Name" "LONGONE" "LONGTWO" "LONGFOR"
    "🐬🐬" "🐟🐟" "PLAINORIG" "PLAINEDIT" "🧿" "receipt target" "hi alice" "hi bob")
assert_eq "$(scan_server "${needles[@]}")" "0" "server data directory (db, WAL, attachments)"
for f in "$E2E_DIR/server.out" "$E2E_DIR/server.err"; do
    for n in "${needles[@]}"; do
        if grep -a -q -F -- "$n" "$f"; then fail "[$n] is in $f"; fi
    done
done

log "ok"
