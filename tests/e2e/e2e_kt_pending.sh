#!/usr/bin/env bash
# A contact whose keys the key directory has not published (or that it
# refuses) never stalls anyone else's messages (issue 9; docs/cli.md "Key
# transparency"), with a real sottod and a real sotto-auditor:
#  - receive: a message from brand-new dave, whose keys no auditor has
#    countersigned yet, is held with a `key_directory_pending` notice and
#    acknowledged; bob's later message in the same receive is shown. After
#    `sotto-auditor run --once`, the next receive shows dave's messages
#    exactly once, in order;
#  - a held sender pinned meanwhile by a send is released as well;
#  - a sender the directory refuses (an auditor alice requires never signed):
#    `key_directory_refused`, released once alice's requirement is met;
#  - flush/send: a queued message to a not-yet-published user waits (exit 3,
#    "waiting until the key directory publishes ...") while a message to bob
#    behind it goes out.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

AUDITOR=${SOTTO_AUDITOR:-$(dirname "$SOTTO")/../auditor/sotto-auditor}
[ -x "$AUDITOR" ] || fail "no sotto-auditor at $AUDITOR (set SOTTO_AUDITOR)"
AUD_DIR="$E2E_DIR/auditor"

server_start
"$SOTTOD" --data-dir "$SERVER_DATA" --kt-info >"$E2E_DIR/ktinfo" 2>"$E2E_DIR/ktinfo.err" ||
    fail "sottod --kt-info: $(cat "$E2E_DIR/ktinfo.err")"
kt_key=$(sed -n 's/^kt_server_key \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/ktinfo")
[ -n "$kt_key" ] || fail "no kt_server_key in sottod --kt-info"

"$AUDITOR" init --dir "$AUD_DIR" --server "$SERVER_URL" --pin "$SERVER_FP" \
    --server-key "$kt_key" >"$E2E_DIR/aud.init" 2>&1 || fail "auditor init: $(cat "$E2E_DIR/aud.init")"
aud_key=$(sed -n 's/^auditor key: \([0-9a-f]\{64\}\)$/\1/p' "$E2E_DIR/aud.init")
[ -n "$aud_key" ] || fail "no auditor key: $(cat "$E2E_DIR/aud.init")"
server_restart --set "kt_auditors=$aud_key"

# audit: one pass of the auditor (catch up, countersign)
audit() {
    timeout -k 2 60 "$AUDITOR" run --dir "$AUD_DIR" --once >"$E2E_DIR/aud.run" 2>&1 ||
        fail "sotto-auditor run --once: $(cat "$E2E_DIR/aud.run")"
}

# published WHO NAME: until WHO's `kt check NAME` finds NAME in the published
# directory (the head with NAME may still be on its way when audit runs)
published() {
    for _ in $(seq 1 50); do
        audit
        sc "$1" --json kt check "$2"
        [ "$RC" = 0 ] && return 0
        sleep 0.2
    done
    fail "$2 never published for $1 (last exit $RC: $(cat "$E2E_DIR/last.err"))"
}

# count_notices FILE CODE FROM: notices with that code from that sender
count_notices() {
    python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line:
        ev = json.loads(line)
        if ev.get("type") == "notice" and ev.get("code") == sys.argv[2] and ev.get("from") == sys.argv[3]:
            n += 1
print(n)
' "$1" "$2" "$3"
}

# bodies_in_order FILE: the message bodies in FILE, one per line
bodies_in_order() {
    python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if line:
        ev = json.loads(line)
        if ev.get("type") == "message":
            print(ev.get("body"))
' "$1"
}

for u in alice bob; do
    register "$u"
done
sc_ok alice kt auditor add "$aud_key"
published alice bob
published alice alice

log "alice and bob pin each other"
sc_ok alice send bob "hi bob"
receive_json bob "$E2E_DIR/b0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b0.json" "hi bob")" "1" "bob got alice's first message"
sc_ok bob send alice "hi alice"
receive_json alice "$E2E_DIR/a0.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a0.json" "hi alice")" "1" "alice got bob's first message"

log "brand-new dave writes to alice before any auditor saw his keys"
register dave
sc_ok dave send alice "from dave 1"
sc_ok bob send alice "bob after dave"
receive_json alice "$E2E_DIR/a1.json"
assert_eq "$(count_notices "$E2E_DIR/a1.json" key_directory_pending dave)" "1" "pending notice for dave"
grep -q "will be shown once the key directory publishes" "$E2E_DIR/a1.json" ||
    fail "the notice does not say what happens next: $(cat "$E2E_DIR/a1.json")"
assert_eq "$(count_message_bodies "$E2E_DIR/a1.json" "bob after dave")" "1" \
    "bob's message behind dave's is shown"
assert_eq "$(count_message_bodies "$E2E_DIR/a1.json" "from dave 1")" "0" "dave's not shown yet"

log "dave writes again: still held, behind the first one"
sc_ok dave send alice "from dave 2"
receive_json alice "$E2E_DIR/a2.json"
assert_eq "$(count_notices "$E2E_DIR/a2.json" key_directory_pending dave)" "1" \
    "pending notice for dave's second message"
assert_eq "$(count_message_bodies "$E2E_DIR/a2.json" "from dave 1")" "0" "dave 1 still held"
assert_eq "$(count_message_bodies "$E2E_DIR/a2.json" "from dave 2")" "0" "dave 2 held"

log "the auditor countersigns: alice's next receive shows dave's messages, once, in order"
audit
published alice dave
assert_eq "$(jfield pinned <"$E2E_DIR/last.out")" "false" "kt check did not pin dave"
receive_json alice "$E2E_DIR/a3.json"
assert_eq "$(bodies_in_order "$E2E_DIR/a3.json" | tr '\n' '|')" "from dave 1|from dave 2|" \
    "dave's messages released in order"
receive_json alice "$E2E_DIR/a4.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a4.json" "from dave 1")" "0" "not shown again"
sc_ok alice --json history dave
cp "$E2E_DIR/last.out" "$E2E_DIR/hist.json"
assert_eq "$(count_message_bodies "$E2E_DIR/hist.json" "from dave 1")" "1" "dave 1 once in history"
assert_eq "$(count_message_bodies "$E2E_DIR/hist.json" "from dave 2")" "1" "dave 2 once in history"

log "a held sender that alice pins meanwhile (by writing to him) is released too"
register erin
sc_ok erin send alice "from erin"
receive_json alice "$E2E_DIR/a5.json"
assert_eq "$(count_notices "$E2E_DIR/a5.json" key_directory_pending erin)" "1" "erin held"
published alice erin
sc_ok alice send erin "hi erin"
receive_json alice "$E2E_DIR/a6.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a6.json" "from erin")" "1" "erin's message released"

log "a sender the directory refuses for alice: key_directory_refused, released later"
register gina
published alice gina
never=$(printf '%064d' 0 | tr 0 b)
sc_ok alice kt auditor add "$never"
sc_ok gina send alice "from gina"
sc_ok bob send alice "bob after gina"
receive_json alice "$E2E_DIR/a7.json"
assert_eq "$(count_notices "$E2E_DIR/a7.json" key_directory_refused gina)" "1" "refused notice"
assert_eq "$(count_message_bodies "$E2E_DIR/a7.json" "bob after gina")" "1" "bob's shown"
assert_eq "$(count_message_bodies "$E2E_DIR/a7.json" "from gina")" "0" "gina's held"
sc_ok alice kt auditor remove "$never"
receive_json alice "$E2E_DIR/a8.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a8.json" "from gina")" "1" "gina's released"

log "flush: a message to a not-yet-published user does not hold back bob's"
register frank
sc alice send frank "to frank"
assert_rc 3 "send to frank before his keys are published"
grep -q "waiting until the key directory publishes frank's keys" "$E2E_DIR/last.err" ||
    fail "no clear reason: $(cat "$E2E_DIR/last.err")"
sc alice send bob "bob behind frank"
assert_rc 0 "send to bob with frank's message queued before it"
sc alice --json flush
assert_rc 3 "flush with frank's message still waiting"
grep -q "frank" "$E2E_DIR/last.err" || fail "flush does not name frank: $(cat "$E2E_DIR/last.err")"
receive_json bob "$E2E_DIR/b1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/b1.json" "bob behind frank")" "1" "bob got it"
published alice frank
sc_ok alice --json flush
assert_eq "$(jfield queued <"$E2E_DIR/last.out")" "0" "queue empty once frank is published"
receive_json frank "$E2E_DIR/f1.json"
assert_eq "$(count_message_bodies "$E2E_DIR/f1.json" "to frank")" "1" "frank got it"

log "trust of a name with no key pinned yet is refused (there is nothing to compare)"
register hugo
sc alice send hugo "hi hugo"
assert_rc 3 "send to hugo before his keys are published"
sc_ok hugo send alice "hugo here"
receive_json alice "$E2E_DIR/a9.json"
assert_eq "$(count_message_bodies "$E2E_DIR/a9.json" "hugo here")" "0" "hugo's message held"
# refused either way: not a contact yet (exit 6), or a contact whose key is not
# pinned yet (exit 8, "nothing to trust") -- never "trusted"
trust_refused() {
    sc alice trust hugo; log "trust hugo: exit $RC"
    case "$RC" in
    6) grep -q "unknown contact" "$E2E_DIR/last.err" || fail "unclear: $(cat "$E2E_DIR/last.err")" ;;
    8) grep -q "nothing to trust" "$E2E_DIR/last.err" || fail "unclear: $(cat "$E2E_DIR/last.err")" ;;
    *) fail "trust hugo before any key of his is pinned exited $RC" ;;
    esac
}
trust_refused
log "a group with a member the directory has not published yet: made, their copy waits"
sc alice group create "garden" bob hugo
case "$RC" in
0 | 3) ;;
*) fail "group create with hugo unpublished exited $RC: $(cat "$E2E_DIR/last.err")" ;;
esac
sc_ok alice --json group list
grep -q '"garden"' "$E2E_DIR/last.out" || fail "the group was not created: $(cat "$E2E_DIR/last.out")"
receive_json bob "$E2E_DIR/b2.json"
grep -q '"garden"' "$E2E_DIR/b2.json" || fail "bob did not get the group: $(cat "$E2E_DIR/b2.json")"
trust_refused   # hugo is a group member now, still with no key pinned
published alice hugo
sc_ok alice --json flush
receive_json hugo "$E2E_DIR/h1.json"
grep -q '"garden"' "$E2E_DIR/h1.json" || fail "hugo never got the group: $(cat "$E2E_DIR/h1.json")"
assert_eq "$(count_message_bodies "$E2E_DIR/h1.json" "hi hugo")" "1" "hugo got alice's first message"

log "ok"
