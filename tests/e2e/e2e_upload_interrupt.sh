#!/usr/bin/env bash
# Ctrl-C during an upload (`send --file`) leaves the message in the outgoing
# queue, not lost (issue 10): SIGINT reaches the client while the server is
# receiving the blob; `flush` later uploads the file again and sends the
# message, and the recipient gets the file byte-exact. Also: a file that is
# gone by the time of that flush drops its message with exit 2 and leaves
# nothing queued.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

log "a 90 MiB file; SIGINT while the server is receiving it"
head -c $((90 * 1024 * 1024)) /dev/urandom >"$E2E_DIR/big.bin"
RC=0
XDG_DATA_HOME="$E2E_DIR/home/alice" python3 - "$SERVER_DATA/attachments" "$SOTTO" --account alice \
    send --file "$E2E_DIR/big.bin" --text "the big one" bob <<'EOF' >"$E2E_DIR/int.out" 2>&1 || RC=$?
import os, signal, subprocess, sys, time
att, argv = sys.argv[1], sys.argv[2:]
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
deadline = time.time() + 30
seen = 0
while time.time() < deadline and p.poll() is None:
    for d, _, files in os.walk(att):
        for f in files:
            try:
                seen = max(seen, os.path.getsize(os.path.join(d, f)))
            except OSError:
                pass
    if seen > 1024 * 1024:  # the upload is under way
        p.send_signal(signal.SIGINT)
        break
    time.sleep(0.002)
rc = p.wait(timeout=30)
print("server had %d bytes when interrupted; client exit %d" % (seen, rc))
sys.exit(0 if seen > 1024 * 1024 and rc != 0 else 1)
EOF
[ "$RC" = 0 ] || fail "the upload was not interrupted mid-way: $(cat "$E2E_DIR/int.out")"
cat "$E2E_DIR/int.out"

log "the message is still queued; flush uploads and sends it"
sc_ok alice --json flush
assert_eq "$(jfield sent <"$E2E_DIR/last.out")" "1" "messages sent by flush after the interrupt"
assert_eq "$(jfield queued <"$E2E_DIR/last.out")" "0" "rows left queued"
receive_json bob "$E2E_DIR/r.json"
events message "$E2E_DIR/r.json" >"$E2E_DIR/r.msgs"
assert_eq "$(wc -l <"$E2E_DIR/r.msgs")" "1" "messages bob received"
assert_eq "$(jfield body <"$E2E_DIR/r.msgs")" "the big one" "the caption"
path=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["attachments"][0]["path"] or "")' "$E2E_DIR/r.msgs")
[[ -n "$path" && -f "$path" ]] || fail "file not saved: $(cat "$E2E_DIR/r.msgs")"
assert_eq "$(sha256sum <"$path" | cut -d' ' -f1)" "$(sha256sum <"$E2E_DIR/big.bin" | cut -d' ' -f1)" \
    "SHA-256 of the received file"
sc_ok alice history --limit 1 bob
grep -q -F "sent from $E2E_DIR/big.bin" "$E2E_DIR/last.out" ||
    fail "alice's history does not show the file sent: $(cat "$E2E_DIR/last.out")"

log "a queued file that is gone by the flush: the message is dropped (exit 2), nothing stays queued"
head -c 4096 /dev/urandom >"$E2E_DIR/gone.bin"
server_stop_ok
sc alice send --file "$E2E_DIR/gone.bin" bob
assert_rc 3 "send --file with the server down (queued)"
rm "$E2E_DIR/gone.bin"
server_restart
sc alice flush
assert_rc 2 "flush of a message whose file is gone"
grep -q -F "gone.bin" "$E2E_DIR/last.err" || fail "the error does not name the file: $(cat "$E2E_DIR/last.err")"
sc_ok alice flush
assert_eq "$(cat "$E2E_DIR/last.out")" "nothing was queued" "queue after the dropped file"

log "ok"
