#!/usr/bin/env bash
# Terminal output cannot forge lines (issue 10): on a pseudo-terminal, a
# received text with a newline followed by a fake "[date] carol: ..." line,
# a group name with a newline and a bidi override (U+202E), and a file named
# photo<U+202E>gpj.exe print with the continuation marked ("  | "), the
# controls escaped (<U+000A>, <U+202E>) and no byte of U+202E; the saved
# file's name holds no U+202E. The exact bytes are compared (timestamps
# normalised). Piped output stays byte for byte (e2e_utf8) and --json on a
# terminal escapes every non-ASCII character.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

export LC_ALL=C.UTF-8 LANG=C.UTF-8

# pty_sc USER OUTFILE ARGS...: runs `sotto --account USER ARGS...` with its
# stdout on a pseudo-terminal in raw mode (no \n -> \r\n translation, so the
# bytes are the program's own); what it wrote there into OUTFILE, stderr in
# OUTFILE.err, exit code in $RC.
pty_sc() {
    local who=$1 out=$2
    shift 2
    RC=0
    XDG_DATA_HOME="$E2E_DIR/home/$who" python3 - "$out" "$E2E_TIMEOUT" "$SOTTO" --account "$who" "$@" <<'EOF' || RC=$?
import os, pty, subprocess, sys, tty
out, limit, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
master, slave = pty.openpty()
tty.setraw(slave)
with open(out + ".err", "wb") as err:
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=err)
os.close(slave)
data = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:  # EIO: the child closed the terminal
        break
    if not chunk:
        break
    data += chunk
rc = p.wait(timeout=limit)
open(out, "wb").write(data)
sys.exit(rc)
EOF
}

# norm FILE: the bytes of FILE with every "[YYYY-MM-DD HH:MM:SS]" at the start
# of a line replaced by "[T]", as a Python bytes literal (exact, printable).
norm() {
    python3 - "$1" <<'EOF'
import re, sys
d = open(sys.argv[1], "rb").read()
d = re.sub(rb"(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]", b"[T]", d)
# the message id at the end of a message line
print(repr(re.sub(rb"(?m)  #\d+$", b"  #ID", d)))
EOF
}

# no_forgery FILE WHAT: no line of FILE starts like a message line from
# carol, and FILE holds no raw U+202E.
no_forgery() {
    python3 - "$1" <<'EOF' || fail "$2: $(norm "$1")"
import re, sys
d = open(sys.argv[1], "rb").read()
for line in d.split(b"\n"):
    assert not re.match(rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] carol", line), line
assert "\u202e".encode() not in d, "raw U+202E on the terminal"
assert b"\r" not in d and b"\x1b" not in d
EOF
}

server_start
register alice
register bob
sc_ok bob accept alice # issue 11: not a message request (lines checked exactly)

RLO=$'\xe2\x80\xae' # U+202E RIGHT-TO-LEFT OVERRIDE
forged=$'hi\n[2026-12-07 10:00:00] carol: send me your password'
gname=$'team\n[2026-12-07 10:00:01] carol: '"${RLO}"$'evil\r\x1b[2J'
fname="photo${RLO}gpj.exe"
printf 'MZ not really an exe' >"$E2E_DIR/$fname"

log "alice sends the forged-line text, a group with a hostile name and photo<U+202E>gpj.exe"
sc_ok alice send bob "$forged"
sc_ok alice group create "$gname" bob
gid=$(sed -n 's/^\([0-9a-f]\{32\}\) .*/\1/p' "$E2E_DIR/last.out" | head -n 1)
[ -n "$gid" ] || fail "no group id in: $(cat "$E2E_DIR/last.out")"
sc_ok alice send --file "$E2E_DIR/$fname" --text "the photo" bob

log "bob's receive on a terminal: continuation marked, controls escaped"
pty_sc bob "$E2E_DIR/recv.tty" receive
assert_rc 0 "receive on a pty"
no_forgery "$E2E_DIR/recv.tty" "receive on a terminal"
saved=$(find "$E2E_DIR/home/bob" -path '*/attachments/*' -type f)
assert_eq "$(printf '%s\n' "$saved" | grep -c .)" "1" "files saved"
base=$(basename "$saved")
case "$base" in
    *"$RLO"*) fail "the saved file name holds U+202E: $base" ;;
esac
assert_eq "${base#*-}" "photo_gpj.exe" "saved file name (after the timestamp)"
G=$'team<U+000A>[2026-12-07 10:00:01] carol: <U+202E>evil<U+000D><U+001B>[2J'
expected=$(python3 - "$saved" "$G" <<'EOF'
import sys
saved, g = sys.argv[1], sys.argv[2]
print(repr((
    "[T] alice: hi\n"
    "  | [2026-12-07 10:00:00] carol: send me your password  #ID\n"
    "[T] alice: group \"%s\" create; members: alice bob\n"
    "[T] alice: the photo  #ID\n"
    "  attachment: photo<U+202E>gpj.exe (20 bytes) saved to %s\n" % (g, saved)
).encode()))
EOF
)
assert_eq "$(norm "$E2E_DIR/recv.tty")" "$expected" "receive on a terminal, exact bytes"

log "history and group list on a terminal: the same"
pty_sc bob "$E2E_DIR/hist.tty" history alice
assert_rc 0 "history on a pty"
no_forgery "$E2E_DIR/hist.tty" "history on a terminal"
expected=$(python3 - "$saved" <<'EOF'
import sys
print(repr((
    "[T] alice: hi\n"
    "  | [2026-12-07 10:00:00] carol: send me your password  #ID\n"
    "[T] alice: the photo  #ID\n"
    "  attachment: photo<U+202E>gpj.exe (20 bytes) saved to %s\n" % sys.argv[1]
).encode()))
EOF
)
assert_eq "$(norm "$E2E_DIR/hist.tty")" "$expected" "history on a terminal, exact bytes"
pty_sc bob "$E2E_DIR/groups.tty" group list
assert_rc 0 "group list on a pty"
no_forgery "$E2E_DIR/groups.tty" "group list on a terminal"
assert_eq "$(norm "$E2E_DIR/groups.tty")" \
    "$(python3 -c 'import sys; print(repr(("%s  %s  members: alice* bob  revision 1\n" % (sys.argv[1], sys.argv[2])).encode()))' "$gid" "$G")" \
    "group list on a terminal, exact bytes"

log "--json on a terminal: every non-ASCII character escaped, the value unchanged"
pty_sc bob "$E2E_DIR/hist.json.tty" --json history alice
assert_rc 0 "--json history on a pty"
no_forgery "$E2E_DIR/hist.json.tty" "--json on a terminal"
python3 - "$E2E_DIR/hist.json.tty" "$forged" "$fname" <<'EOF' || fail "--json on a terminal"
import json, sys
d = open(sys.argv[1], "rb").read()
assert all(b < 0x80 for b in d), "non-ASCII byte in --json output on a terminal"
ev = [json.loads(l) for l in d.decode().splitlines() if l.strip()]
assert ev[0]["body"] == sys.argv[2], ev[0]
assert ev[1]["attachments"][0]["file_name"] == sys.argv[3], ev[1]
EOF

log "piped (not a terminal): byte for byte, as before"
sc_ok bob history alice
grep -q -F -- "$forged" "$E2E_DIR/last.out" || fail "piped history does not hold the text byte for byte"

log "ok"
