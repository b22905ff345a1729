#!/usr/bin/env bash
# Small things found trying the client as a new user (issue 10), each as
# found then fixed:
#  - a relative --ca given at register is stored as an absolute path: the
#    account works later from another working directory;
#  - a failed `send` to an unknown user does not create a contact;
#  - a failed `register` (name taken, server unreachable) leaves no local
#    account directory behind, and a retry works;
#  - a removed device gets exit 8 from every command that connects
#    (send, receive, listen, flush, devices);
#  - `listen` says on stderr when it loses the server and when it is back;
#  - `sotto send bob` on a terminal with no text says it reads standard input.
# The Ctrl-C-during-upload case is e2e_upload_interrupt.sh.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "openssl missing: skipped"; exit 77; }

log "a server with a certificate from our own CA (for --ca)"
CA="$E2E_DIR/ca"
mkdir -p "$CA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=sotto test CA" -keyout "$CA/ca.key" -out "$CA/ca.pem" >/dev/null 2>&1 ||
    fail "openssl: CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$CA/srv.key" -out "$CA/srv.csr" >/dev/null 2>&1 || fail "openssl: CSR"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$CA/ext"
openssl x509 -req -in "$CA/srv.csr" -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -CAcreateserial \
    -days 2 -extfile "$CA/ext" -out "$CA/srv.pem" >/dev/null 2>&1 || fail "openssl: sign"
server_start --set "tls_cert=$CA/srv.pem" --set "tls_key=$CA/srv.key"
register alice
register bob

log "--ca given as a relative path at register works from another directory later"
mkdir -p "$E2E_DIR/wd1" "$E2E_DIR/wd2"
cp "$CA/ca.pem" "$E2E_DIR/wd1/ca.pem"
(cd "$E2E_DIR/wd1" && sc carol --server "$SERVER_URL" --ca ca.pem register carol && echo "$RC" >"$E2E_DIR/rc")
assert_eq "$(cat "$E2E_DIR/rc")" "0" "register carol with --ca ca.pem (relative)"
stored=$(sqlite3 "$E2E_DIR/home/carol/sotto/carol/store.db" \
    "SELECT value FROM client_config WHERE key = 'ca_file'")
assert_eq "$stored" "$E2E_DIR/wd1/ca.pem" "the stored --ca path"
(cd "$E2E_DIR/wd2" && sc carol send alice "from another directory" && echo "$RC" >"$E2E_DIR/rc")
assert_eq "$(cat "$E2E_DIR/rc")" "0" "send from another working directory (stderr: $(cat "$E2E_DIR/last.err"))"

log "a send to an unknown user fails (exit 6) and creates no contact"
sc alice send nosuchuser "hello?"
assert_rc 6 "send to an unknown user"
sc_ok alice --json contacts
grep -q '"name":"nosuchuser"' "$E2E_DIR/last.out" &&
    fail "the unknown user became a contact: $(cat "$E2E_DIR/last.out")"
sc_ok alice flush
assert_eq "$(cat "$E2E_DIR/last.out")" "nothing was queued" "queue after the failed send"

log "a failed register leaves no local account behind; a retry works"
sc dave --server "$SERVER_URL" --ca "$CA/ca.pem" register alice
assert_rc 4 "register a taken name"
[ -e "$E2E_DIR/home/dave/sotto/dave" ] &&
    fail "a failed register left $(ls -A "$E2E_DIR/home/dave/sotto/dave")"
sc dave receive
assert_rc 8 "receive on the account a failed register did not create"
sc dave --server "$SERVER_URL" --ca "$CA/ca.pem" register dave
assert_rc 0 "register again with a free name"
sc erin --server "https://127.0.0.1:1" --ca "$CA/ca.pem" register erin
assert_rc 3 "register with the server unreachable"
[ -e "$E2E_DIR/home/erin/sotto/erin" ] &&
    fail "register with the server unreachable left $(ls -A "$E2E_DIR/home/erin/sotto/erin")"
sc erin --server "$SERVER_URL" --ca "$CA/ca.pem" register erin
assert_rc 0 "register erin once the server is reachable"

log "listen says on stderr when it loses the server and when it is back"
sc_bg bob "$E2E_DIR/listen.out" listen
LISTEN_PID=$BG_PID
sleep 1.5
server_restart --set "tls_cert=$CA/srv.pem" --set "tls_key=$CA/srv.key"
wait_for "$E2E_DIR/listen.out.err" 20 "sotto: lost the connection to the server"
wait_for "$E2E_DIR/listen.out.err" 40 "sotto: connected to the server again"
sc_ok alice send bob "after the restart"
wait_for "$E2E_DIR/listen.out" 20 "after the restart"
bg_stop "$LISTEN_PID"
assert_rc 0 "listen ends with exit 0 on SIGTERM"
assert_eq "$(grep -c 'lost the connection' "$E2E_DIR/listen.out.err")" "1" "lost messages"
assert_eq "$(grep -c 'connected to the server again' "$E2E_DIR/listen.out.err")" "1" "back messages"

log "sotto send bob on a terminal without a text says it reads standard input"
RC=0
XDG_DATA_HOME="$E2E_DIR/home/alice" python3 - "$E2E_DIR/tty.err" "$SOTTO" --account alice send bob <<'EOF' || RC=$?
import os, pty, subprocess, sys, time
errfile, argv = sys.argv[1], sys.argv[2:]
master, slave = pty.openpty()
p = subprocess.Popen(argv, stdin=slave, stdout=subprocess.DEVNULL, stderr=open(errfile, "wb"))
os.close(slave)
time.sleep(1.0)
os.write(master, b"typed on the terminal\n")
time.sleep(0.2)
os.write(master, b"\x04")  # Ctrl-D: end of input
rc = p.wait(timeout=30)
sys.exit(rc)
EOF
assert_eq "$RC" "0" "send on a terminal (stderr: $(cat "$E2E_DIR/tty.err"))"
grep -q -F "reading the message from standard input" "$E2E_DIR/tty.err" ||
    fail "no hint on stderr: $(cat "$E2E_DIR/tty.err")"
receive_json bob "$E2E_DIR/typed.json"
assert_eq "$(events message "$E2E_DIR/typed.json" | jfield body)" "typed on the terminal" "text typed on the terminal"
sc_in alice /dev/null send bob
grep -q -F "standard input" "$E2E_DIR/last.err" && fail "the hint shows without a terminal"

log "a removed device gets exit 8 from every command that connects"
sc bob2 --server "$SERVER_URL" --ca "$CA/ca.pem" link-request
assert_rc 0 "link-request"
code=$(cat "$E2E_DIR/last.out")
sc_ok bob device-add "$code"
finish=$(sed -n 's/^ *sotto --account NAME link-finish //p' "$E2E_DIR/last.out")
# shellcheck disable=SC2086
sc_ok bob2 link-finish $finish
sc_ok bob device-remove 2
for cmd in "send alice hi" "receive" "listen" "flush" "devices"; do
    # shellcheck disable=SC2086
    sc bob2 $cmd
    assert_rc 8 "bob2 $cmd after its removal"
done

log "ok"
