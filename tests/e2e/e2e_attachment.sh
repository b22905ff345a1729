#!/usr/bin/env bash
# Attachments: files round-trip byte-exact (SHA-256 compared), the server's
# blob holds no plaintext, and a blob tampered with or truncated on the
# server's disk is rejected by the recipient with nothing written to its
# attachments directory.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

blobs() { find "$SERVER_DATA/attachments" -type f ! -name '*.part' | sort; }
bob_files() { find "$E2E_DIR/home/bob" -path '*/attachments/*' -type f | sort; }

# send_file NAME TEXT: alice sends $E2E_DIR/NAME to bob; prints the new blob path.
send_file() {
    local before
    before=$(blobs)
    sc_ok alice send --file "$E2E_DIR/$1" --text "$2" bob
    comm -13 <(echo "$before") <(blobs) | grep -v '^$'
}

log "a 300 KiB binary file"
head -c 307200 /dev/urandom >"$E2E_DIR/photo.bin"
blob=$(send_file photo.bin "here is the photo")
[ -n "$blob" ] || fail "no blob appeared in the server's attachments directory"
assert_eq "$(printf '%s\n' "$blob" | wc -l)" "1" "blobs created by one send"
receive_json bob "$E2E_DIR/r1.json"
events message "$E2E_DIR/r1.json" >"$E2E_DIR/r1.msgs"
assert_eq "$(wc -l <"$E2E_DIR/r1.msgs")" "1" "messages with the photo"
assert_eq "$(jfield body <"$E2E_DIR/r1.msgs")" "here is the photo" "text with the file"
assert_eq "$(jfield attachments <"$E2E_DIR/r1.msgs" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
    "1" "attachments in the message"
path=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["attachments"][0]["path"] or "")' "$E2E_DIR/r1.msgs")
[[ -n "$path" && -f "$path" ]] || fail "photo not saved: $(cat "$E2E_DIR/r1.msgs")"
assert_eq "$(sha256sum <"$path" | cut -d' ' -f1)" "$(sha256sum <"$E2E_DIR/photo.bin" | cut -d' ' -f1)" \
    "SHA-256 of the received photo"
assert_eq "$(python3 -c 'import json,sys; a=json.loads(open(sys.argv[1]).readline())["attachments"][0]; print(a["size"], a["file_name"])' "$E2E_DIR/r1.msgs")" \
    "307200 photo.bin" "attachment size and name"
case "$path" in *photo.bin) ;; *) fail "saved name does not end in photo.bin: $path" ;; esac
[ "$(stat -c %s "$blob")" -gt 307200 ] || fail "blob is not larger than the plaintext (no MAC/IV?)"

log "a 3 MiB text file (larger than one WebSocket frame); the blob holds no plaintext"
python3 -c '
import sys
line = "SOTTO-ATTACHMENT-CANARY line %06d of a file that must never be readable on the server\n"
with open(sys.argv[1], "w") as f:
    n = 0
    while f.tell() < 3 * 1024 * 1024:
        f.write(line % n); n += 1
' "$E2E_DIR/big.txt"
blob=$(send_file big.txt "big one")
[ -n "$blob" ] || fail "no blob for big.txt"
receive_json bob "$E2E_DIR/r2.json"
path=$(events message "$E2E_DIR/r2.json" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["attachments"][0]["path"] or "")')
[[ -n "$path" && -f "$path" ]] || fail "big.txt not saved: $(cat "$E2E_DIR/r2.json")"
assert_eq "$(sha256sum <"$path" | cut -d' ' -f1)" "$(sha256sum <"$E2E_DIR/big.txt" | cut -d' ' -f1)" \
    "SHA-256 of the received big.txt"
assert_eq "$(scan_server "SOTTO-ATTACHMENT-CANARY" "never be readable" "big.txt" "here is the photo")" "0" \
    "plaintext hits in the server's data directory"

# tamper NAME HOW: sends NAME, damages its blob with HOW (flip|truncate|extend),
# then checks that bob's receive rejects it and writes nothing.
tamper() {
    local name=$1 how=$2 blob size files_before
    printf 'tamper test %s: the content must not appear at bob\n' "$how" >"$E2E_DIR/$name"
    head -c 5000 /dev/urandom | base64 >>"$E2E_DIR/$name"
    blob=$(send_file "$name" "damaged: $how")
    [ -n "$blob" ] || fail "no blob for $name"
    size=$(stat -c %s "$blob")
    case "$how" in
    flip)
        # flip one bit in the middle of the ciphertext
        python3 -c '
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x01]))
' "$blob" $((size / 2))
        ;;
    truncate) truncate -s $((size - 100)) "$blob" ;;
    extend) head -c 64 /dev/urandom >>"$blob" ;;
    esac
    files_before=$(bob_files)
    sc bob --json receive
    local rc_receive=$RC
    cp "$E2E_DIR/last.out" "$E2E_DIR/tamper-$how.json"
    events message "$E2E_DIR/tamper-$how.json" >"$E2E_DIR/tamper-$how.msgs"
    assert_eq "$(wc -l <"$E2E_DIR/tamper-$how.msgs")" "1" "[$how] the message itself still arrives"
    assert_eq "$(jfield body <"$E2E_DIR/tamper-$how.msgs")" "damaged: $how" "[$how] its text"
    python3 -c '
import json, sys
a = json.loads(open(sys.argv[1]).readline())["attachments"]
assert len(a) == 1, "attachments: %r" % a
assert a[0]["path"] is None, "a damaged attachment was saved at %r" % a[0]["path"]
assert a[0]["error"], "no error reported for a damaged attachment"
' "$E2E_DIR/tamper-$how.msgs" || fail "[$how] damaged attachment not rejected: $(cat "$E2E_DIR/tamper-$how.msgs")"
    assert_eq "$(bob_files)" "$files_before" "[$how] files in bob's attachments directory"
    leaked=$(grep -r -l -a -F "tamper test $how: the content" "$E2E_DIR/home/bob" || true)
    [ -z "$leaked" ] || fail "[$how] plaintext of the damaged file reached bob's disk: $leaked"
    # and the message is not offered again (it was stored and acked)
    receive_json bob "$E2E_DIR/tamper-$how.again.json"
    assert_eq "$(events message "$E2E_DIR/tamper-$how.again.json" | wc -l)" "0" "[$how] message delivered twice"
    assert_eq "$rc_receive" "7" "[$how] receive's exit code (docs/cli.md: 7 when an attachment failed verification)"
}

log "a blob with one bit flipped on the server's disk is rejected, nothing written"
tamper flipped.txt flip
log "a truncated blob is rejected, nothing written"
tamper truncated.txt truncate
log "a blob with bytes appended is rejected, nothing written"
tamper extended.txt extend

log "a blob deleted from the server: the message arrives, the attachment is reported missing"
printf 'to be deleted\n' >"$E2E_DIR/gone.txt"
blob=$(send_file gone.txt "the file was deleted")
rm -f "$blob"
files_before=$(bob_files)
sc bob --json receive
events message "$E2E_DIR/last.out" >"$E2E_DIR/gone.msgs"
assert_eq "$(jfield body <"$E2E_DIR/gone.msgs")" "the file was deleted" "text of the message whose file is gone"
python3 -c '
import json, sys
a = json.loads(open(sys.argv[1]).readline())["attachments"][0]
assert a["path"] is None and a["error"], a
' "$E2E_DIR/gone.msgs" || fail "missing blob not reported: $(cat "$E2E_DIR/gone.msgs")"
assert_eq "$(bob_files)" "$files_before" "files in bob's attachments directory"

log "sending a file that does not exist: exit 2, nothing sent"
sc alice send --file "$E2E_DIR/no-such-file" bob
assert_rc 2 "send --file of a missing file"

log "ok"
