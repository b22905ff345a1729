#!/usr/bin/env bash
# The CLI's command table (client/cli/main.c, docs/cli.md): help generated
# per command and subcommand with its exit codes, "did you mean" for an
# unknown command, global options after the command (and `--` protecting
# texts that look like options), and the newcomer fixes: flush says how many
# it sent, history says "sent from" for our own file and "me" for our own
# group changes, contacts never shows "verified" next to a changed safety
# number.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

log "help: overview, every command's own help with its exit codes"
sc alice --help
assert_rc 0 "sotto --help"
for cmd in register devices link-request device-add link-finish device-remove send receive \
    listen contacts trust safety-number group history flush; do
    grep -q "^  $cmd" "$E2E_DIR/last.out" || fail "sotto --help does not list $cmd"
done
sc alice --help
cp "$E2E_DIR/last.out" "$E2E_DIR/main_help.txt"
for cmd in register devices link-request device-add link-finish device-remove send receive \
    listen contacts trust safety-number group history flush; do
    sc alice "$cmd" --help
    assert_rc 0 "sotto $cmd --help"
    grep -q "^usage: sotto .*$cmd" "$E2E_DIR/last.out" || fail "$cmd --help has no usage line"
    grep -q "^Exit codes:" "$E2E_DIR/last.out" || fail "$cmd --help lists no exit codes"
    cmp -s "$E2E_DIR/last.out" "$E2E_DIR/main_help.txt" && fail "$cmd --help printed the overview"
done
sc alice send --help
grep -q "^  5  safety number changed" "$E2E_DIR/last.out" || fail "send --help lacks exit 5"
grep -q "^  3  not sent now" "$E2E_DIR/last.out" || fail "send --help lacks exit 3 (queued)"
sc alice group create --help
assert_rc 0 "group create --help"
assert_eq "$(head -n 1 "$E2E_DIR/last.out")" "usage: sotto --account NAME group create NAME [MEMBER...]" \
    "group create --help usage"
grep -q "group rename" "$E2E_DIR/last.out" && fail "group create --help printed the whole group help"
grep -q "^Exit codes:" "$E2E_DIR/last.out" || fail "group create --help lists no exit codes"
sc alice help group create
assert_eq "$(head -n 1 "$E2E_DIR/last.out")" "usage: sotto --account NAME group create NAME [MEMBER...]" \
    "help group create"

log "unknown command: did you mean, exit 2"
sc alice snd bob hi
assert_rc 2 "unknown command snd"
assert_eq "$(cat "$E2E_DIR/last.err")" "sotto: unknown command 'snd' (did you mean 'send'?)" "stderr"
sc alice --json recieve
assert_rc 2 "unknown command recieve"
assert_eq "$(jfield message <"$E2E_DIR/last.out")" "unknown command 'recieve' (did you mean 'receive'?)" \
    "--json error"
sc alice frobnicate
assert_rc 2 "unknown command frobnicate"
grep -q "did you mean" "$E2E_DIR/last.err" && fail "a suggestion for frobnicate: $(cat "$E2E_DIR/last.err")"
sc alice group crate x
assert_rc 2 "unknown group subcommand"
grep -q "did you mean 'create'" "$E2E_DIR/last.err" || fail "no suggestion: $(cat "$E2E_DIR/last.err")"

server_start
log "global options after the command"
# the server options after the command
sc alice register --server "$SERVER_URL" --pin "$SERVER_FP" --json
assert_rc 0 "register with the options after the command"
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "registered" "register --json after the command"
register bob
register carol
sc_ok alice send bob -- --json
sc_ok alice send bob --text --account
sc_ok alice send bob "plain" --json
assert_eq "$(jfield type <"$E2E_DIR/last.out")" "sent" "send ... --json"
# the account option after the command too (sc puts --account bob first; give another after)
mkdir -p "$E2E_DIR/home/nobody"
RC=0
XDG_DATA_HOME="$E2E_DIR/home/bob" timeout -k 2 "$E2E_TIMEOUT" "$SOTTO" receive --account bob --json \
    >"$E2E_DIR/b1.json" 2>"$E2E_DIR/last.err" </dev/null || RC=$?
assert_rc 0 "sotto receive --account bob --json"
assert_eq "$(count_message_bodies "$E2E_DIR/b1.json" "--json")" "1" "text --json (after --)"
assert_eq "$(count_message_bodies "$E2E_DIR/b1.json" "--account")" "1" "text --account (value of --text)"
assert_eq "$(count_message_bodies "$E2E_DIR/b1.json" "plain")" "1" "text plain"

log "flush says how many it sent"
sc_ok alice flush
assert_eq "$(cat "$E2E_DIR/last.out")" "nothing was queued" "flush with an empty queue"
server_stop_ok
sc alice send bob "queued 1"
assert_rc 3 "send while the server is down"
sc alice send carol "queued 2"
assert_rc 3 "second send while the server is down"
server_restart
sc_ok alice flush
assert_eq "$(cat "$E2E_DIR/last.out")" "sent 2 queued messages; queue empty" "flush output"
sc_ok alice --json flush
assert_eq "$(jfield sent <"$E2E_DIR/last.out")" "0" "flush --json sent"
assert_eq "$(jfield queued <"$E2E_DIR/last.out")" "0" "flush --json queued"

log "history: our own file is 'sent from', our own group change is 'me'"
printf 'file body\n' >"$E2E_DIR/note.txt"
sc_ok alice send --file "$E2E_DIR/note.txt" --text "a file" bob
sc_ok alice history bob
grep -q "attachment: note.txt (10 bytes) sent from $E2E_DIR/note.txt" "$E2E_DIR/last.out" ||
    fail "history of our own file: $(cat "$E2E_DIR/last.out")"
grep -q "saved to" "$E2E_DIR/last.out" && fail "history says 'saved to' for a file we sent"
sc_ok alice group create team bob
sc_ok alice send --group team "hi team"
sc_ok alice history --group team
grep -q '\] me: group "team" create' "$E2E_DIR/last.out" ||
    fail "our group change is not shown as me: $(cat "$E2E_DIR/last.out")"
grep -q '\] alice' "$E2E_DIR/last.out" && fail "group history mixes alice and me: $(cat "$E2E_DIR/last.out")"

log "contacts: no 'verified' next to a changed safety number"
sc_ok alice trust bob
sc_ok alice contacts
grep -q '^bob .*verified' "$E2E_DIR/last.out" || fail "bob not verified after trust: $(cat "$E2E_DIR/last.out")"
"$SOTTOD" admin --data-dir "$SERVER_DATA" delete-account bob >"$E2E_DIR/admin.out" 2>&1 ||
    fail "delete-account bob: $(cat "$E2E_DIR/admin.out")"
mv "$E2E_DIR/home/bob" "$E2E_DIR/home/bob.old"
register bob
sc alice send bob "to the new bob"
assert_rc 5 "send after bob's identity changed"
sc_ok alice contacts
grep -q '^bob .*SAFETY NUMBER CHANGED' "$E2E_DIR/last.out" || fail "no change shown: $(cat "$E2E_DIR/last.out")"
grep -q '^bob .*verified' "$E2E_DIR/last.out" && fail "verified next to a changed safety number: $(cat "$E2E_DIR/last.out")"
sc_ok alice --json contacts
grep '"name":"bob"' "$E2E_DIR/last.out" >"$E2E_DIR/bob.contact"
assert_eq "$(jfield identity_changed <"$E2E_DIR/bob.contact")" "true" "identity_changed"
assert_eq "$(jfield verified <"$E2E_DIR/bob.contact")" "false" "verified while changed"

log "ok"
