#!/usr/bin/env bash
# Attachments and a full local disk (issue 7, "Attachment lost on a full
# local disk"): while the receiver's disk refuses to write its attachment
# files, `receive` stores and acknowledges the message, keeps the attachment
# pointer (and key) in the history row, reports the real cause ("No space
# left on device", exit 1, JSON code "store") -- not a network error, and not
# an integrity failure that would wipe the key -- and the next `receive`
# after space returns downloads the file (SHA-256 compared) and shows it
# exactly once, as an `attachment_ready` notice.
#
# The full disk is played by tests/e2e/enospc_shim.c (LD_PRELOAD): writes to
# the chosen temporary files of bob's attachments directory fail with ENOSPC,
# everything else works (a small message still fits, a file does not).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ -z "${SOTTO_E2E_ENOSPC_SHIM:-}" ] || [ ! -f "${SOTTO_E2E_ENOSPC_SHIM:-}" ]; then
    echo "note: enospc_shim not built (sanitizer build?): test skipped" >&2
    exit 77
fi

server_start
register alice
register bob

BOB_DB="$E2E_DIR/home/bob/sotto/bob/store.db"
bob_files() { find "$E2E_DIR/home/bob" -path '*/attachments/*' -type f ! -name '.*' | sort; }

# full_receive PREFIXES: bob's `--json receive` with writes to files in his
# attachments directory whose names start with PREFIXES refused (ENOSPC).
full_receive() {
    rm -f "$E2E_DIR/enospc.mark"
    RC=0
    XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 "$E2E_TIMEOUT" \
        env LD_PRELOAD="$SOTTO_E2E_ENOSPC_SHIM" SOTTO_E2E_ENOSPC="$1" \
        SOTTO_E2E_ENOSPC_MARK="$E2E_DIR/enospc.mark" \
        "$SOTTO" --account bob --json receive >"$E2E_DIR/last.out" 2>"$E2E_DIR/last.err" </dev/null || RC=$?
    [ -f "$E2E_DIR/enospc.mark" ] || fail "the full disk was never hit (rc=$RC): $(cat "$E2E_DIR/last.err")"
}

# attachment FILE FIELD: FIELD of the first attachment of the only message event in FILE
attachment() {
    python3 -c '
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and json.loads(l)["type"] == "message"]
assert len(msgs) == 1, "message events: %r" % msgs
v = msgs[0]["attachments"][0][sys.argv[2]]
print("" if v is None else v)
' "$1" "$2"
}

# stored_key BODY: the attachment key still kept in bob's history row of the
# message with text BODY ("" when gone)
stored_key() {
    python3 -c '
import json, sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
rows = con.execute("SELECT extra FROM client_messages WHERE body = ?", (sys.argv[2],)).fetchall()
assert len(rows) == 1, rows
print(json.loads(rows[0][0])["attachments"][0].get("key", ""))
' "$BOB_DB" "$1"
}

head -c 307200 /dev/urandom >"$E2E_DIR/one.bin"
head -c 1500000 /dev/urandom >"$E2E_DIR/two.bin"

log "disk full while the ciphertext downloads: the message arrives, the cause is named"
sc_ok alice send --file "$E2E_DIR/one.bin" --text "first file" bob
full_receive ".download-"
cp "$E2E_DIR/last.out" "$E2E_DIR/r1.json"
cp "$E2E_DIR/last.err" "$E2E_DIR/r1.err"
assert_eq "$(count_message_bodies "$E2E_DIR/r1.json" "first file")" "1" "message events for the first file"
assert_eq "$(attachment "$E2E_DIR/r1.json" path)" "" "path of an attachment that could not be written"
err1=$(attachment "$E2E_DIR/r1.json" error)
case "$err1" in
*"No space left on device"*) ;;
*) fail "the event's error does not name the full disk: [$err1]" ;;
esac
case "$err1" in
*"download failed"* | *network* | *verification*) fail "a full disk reported as something else: [$err1]" ;;
esac
assert_eq "$RC" "1" "receive's exit code on a full disk (docs/cli.md: 1, local store)"
grep -q "No space left on device" "$E2E_DIR/r1.err" || fail "stderr does not name the cause: $(cat "$E2E_DIR/r1.err")"
assert_eq "$(events error "$E2E_DIR/r1.json" | jfield code)" "store" "JSON error code"
[ -n "$(stored_key "first file")" ] || fail "the attachment key was wiped from the history row"
assert_eq "$(bob_files)" "" "files in bob's attachments directory"

log "disk full while the decrypted file is written: still no integrity failure, key kept"
sc_ok alice send --file "$E2E_DIR/two.bin" --text "second file" bob
full_receive ".plain-"
cp "$E2E_DIR/last.out" "$E2E_DIR/r2.json"
assert_eq "$(count_message_bodies "$E2E_DIR/r2.json" "first file")" "0" "first message shown again"
assert_eq "$(count_message_bodies "$E2E_DIR/r2.json" "second file")" "1" "message events for the second file"
err2=$(attachment "$E2E_DIR/r2.json" error)
case "$err2" in
*"No space left on device"*) ;;
*) fail "the event's error does not name the full disk: [$err2]" ;;
esac
assert_eq "$RC" "1" "receive's exit code (not 7: the blob is fine, the disk is full)"
[ -n "$(stored_key "first file")" ] || fail "first key wiped by a retry on a full disk"
[ -n "$(stored_key "second file")" ] || fail "second key wiped: a local write failure treated as an integrity failure"
assert_eq "$(bob_files)" "" "files in bob's attachments directory"
leftovers=$(find "$E2E_DIR/home/bob" -path '*/attachments/.*' -type f | wc -l)
assert_eq "$leftovers" "0" "temporary files left behind"

log "history keeps both messages with their pointers"
sc_ok bob --json history alice
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "first file")" "1" "first message in history"
assert_eq "$(count_message_bodies "$E2E_DIR/last.out" "second file")" "1" "second message in history"

log "space is back: the next receive fetches both, shows each once"
sc bob --json receive
assert_rc 0 "receive after space returned"
cp "$E2E_DIR/last.out" "$E2E_DIR/r3.json"
assert_eq "$(events message "$E2E_DIR/r3.json" | wc -l)" "0" "message events shown again"
events notice "$E2E_DIR/r3.json" >"$E2E_DIR/r3.notices"
assert_eq "$(jfield code <"$E2E_DIR/r3.notices" | sort | uniq -c | sed 's/^ *//')" "2 attachment_ready" \
    "attachment_ready notices"
python3 -c '
import hashlib, json, sys
want = {hashlib.sha256(open(p, "rb").read()).hexdigest(): p for p in sys.argv[2:]}
got = []
for line in open(sys.argv[1]):
    ev = json.loads(line)
    assert len(ev["attachments"]) == 1, ev
    a = ev["attachments"][0]
    assert a["path"] and a["error"] is None, a
    got.append(hashlib.sha256(open(a["path"], "rb").read()).hexdigest())
assert sorted(got) == sorted(want), "SHA-256 of the saved files %r, sent %r" % (got, want)
' "$E2E_DIR/r3.notices" "$E2E_DIR/one.bin" "$E2E_DIR/two.bin" ||
    fail "saved files differ from the sent ones: $(cat "$E2E_DIR/r3.notices")"
assert_eq "$(bob_files | wc -l)" "2" "files in bob's attachments directory"
assert_eq "$(stored_key "first file")" "" "first key after the file was saved"
assert_eq "$(stored_key "second file")" "" "second key after the file was saved"

log "and never again"
receive_json bob "$E2E_DIR/r4.json"
assert_eq "$(wc -l <"$E2E_DIR/r4.json")" "0" "events of a receive with nothing new"
assert_eq "$(bob_files | wc -l)" "2" "files in bob's attachments directory"
sc_ok bob --json history alice
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev["type"] == "message":
        a = ev["attachments"][0]
        assert a["path"] and a["error"] is None, ev
' "$E2E_DIR/last.out" || fail "history does not show the saved files: $(cat "$E2E_DIR/last.out")"

log "ok"
