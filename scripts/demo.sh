#!/usr/bin/env bash
# scripts/demo.sh BUILD_DIR -- `make demo`: a real sottod and three real
# `sotto` clients on this machine, end to end over TLS.
#
# Starts sottod (SQLite, self-signed certificate) on a free loopback port in
# a temporary directory, with an independent auditor of its key directory
# (sotto-auditor); registers alice, bob and carol (each with its own
# data directory, pinning the server's certificate); alice and bob talk, alice
# sends bob a file, the three talk in a group, bob reads and reacts, alice
# edits and sets a disappearing-message timer; it shows a sealed-sender
# message queued for bob with no sender on the server (the raw bytes of the
# database and its WAL gain no "alice"); then it compares safety numbers,
# waits for the server's scrub (scrub_delay_s=2 here, 60 s by default),
# searches every file the server wrote (database, free pages, WAL, SHM,
# attachments: raw bytes) for the plaintexts, the sender timestamps of every
# message sent and the sealed envelope seen queued, and shows what the
# operator could hand over (`sottod admin disclose`). Exits non-zero if
# anything does not hold. Everything is removed at the end.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR   (make demo runs it after building)" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
SOTTOD="$BUILD/server/sottod"
SOTTO="$BUILD/client/sotto"
AUDITOR="$BUILD/auditor/sotto-auditor"
for b in "$SOTTOD" "$SOTTO" "$AUDITOR"; do
    if [ ! -x "$b" ]; then
        echo "demo: $b not found -- build first (make build)" >&2
        exit 1
    fi
done
CLIENT_TIMEOUT=30   # seconds; no client call may hang the demo

# python3 (json, sqlite3 from the standard library): Debian's interpreter
# directly when present -- a version-manager shim first on PATH (pyenv) costs
# ~0.3 s per call, and this script calls it often.
if [ -x /usr/bin/python3 ]; then
    DEMO_PY=/usr/bin/python3
else
    DEMO_PY=$(command -v python3)
fi
python3() { "$DEMO_PY" "$@"; }


if [ -t 1 ]; then
    B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
    B="" D="" G="" R="" N=""
fi

DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sotto-demo.XXXXXX")
SERVER_PID=""
STEP=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DEMO_DIR"
    if [ "$rc" -eq 130 ] || [ "$rc" -eq 143 ]; then
        echo "demo interrupted; server stopped, $DEMO_DIR removed" >&2
    elif [ "$rc" -ne 0 ]; then
        echo "${R}demo failed (exit $rc)${N}" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() {
    STEP=$((STEP + 1))
    printf '\n%s%d. %s%s\n' "$B" "$STEP" "$*" "$N"
}
say() { printf '   %s\n' "$*"; }
die() {
    printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2
    exit 1
}

# shown ARGS...: the arguments as a person would type them (quoted if needed).
shown() {
    local a out=""
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=@+-]+$ ]]; then
            out+=" $a"
        elif [[ "$a" != *\'* ]]; then
            out+=" '$a'"
        elif [[ "$a" != *[\"\$\`\\!]* ]]; then
            out+=" \"$a\""
        else
            out+=" $(printf '%q' "$a")"
        fi
    done
    printf '%s' "${out# }"
}

# as USER ARGS...: runs `sotto --account USER ARGS...` with USER's own data
# directory, shows the command and its output indented.
as() {
    local who=$1
    shift
    printf '   %s%s$ sotto --account %s %s%s\n' "$D" "$who" "$who" "$(shown "$@")" "$N"
    local rc=0
    XDG_DATA_HOME="$DEMO_DIR/$who" timeout -k 2 "$CLIENT_TIMEOUT" \
        "$SOTTO" --account "$who" "$@" </dev/null >"$DEMO_DIR/out" 2>"$DEMO_DIR/err" || rc=$?
    sed 's/^/     /' "$DEMO_DIR/out"
    if [ "$rc" -ne 0 ]; then
        sed 's/^/     /' "$DEMO_DIR/err"
        die "sotto $* (as $who) exited with $rc"
    fi
    # every message sent prints its sender timestamp (its id): kept for the
    # final scan of the server's files
    sed -n 's/.*(timestamp \([0-9]\{1,20\}\)).*/\1/p' "$DEMO_DIR/out" >>"$DEMO_DIR/timestamps"
}

# expect TEXT...: the last command's output shows each TEXT (a message arrived).
expect() {
    local t
    for t in "$@"; do
        grep -q -F -- "$t" "$DEMO_DIR/out" || die "expected to see: $t"
    done
}

# quiet USER ARGS...: the same, output only into $DEMO_DIR/out.
quiet() {
    local who=$1
    shift
    XDG_DATA_HOME="$DEMO_DIR/$who" timeout -k 2 "$CLIENT_TIMEOUT" \
        "$SOTTO" --account "$who" "$@" </dev/null >"$DEMO_DIR/out" 2>"$DEMO_DIR/err" ||
        die "sotto $* (as $who) failed: $(cat "$DEMO_DIR/err")"
}

printf '%sSotto demo%s -- an end-to-end encrypted messenger: the server below relays\n' "$B" "$N"
printf 'only ciphertext. Temporary directory: %s\n' "$DEMO_DIR"

# ---------------------------------------------------------------------------
step "Start the server (SQLite, self-signed certificate, a free port on 127.0.0.1)"
DATA="$DEMO_DIR/server"
# start_server ARGS...: starts sottod on $DATA with ARGS, waits for its two
# lines on stdout and sets URL and PIN from them.
start_server() {
    # (emptied here, not only by the redirection below: that happens in the
    # background child, possibly after the first grep, which would then see
    # the previous server's lines -- a restart failed that way)
    : >"$DEMO_DIR/sottod.out"
    # (under `timeout` so that it cannot outlive a demo that was killed outright)
    timeout -k 5 900 "$SOTTOD" --data-dir "$DATA" "$@" >"$DEMO_DIR/sottod.out" 2>>"$DEMO_DIR/sottod.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        grep -q '^sottod: certificate sha256 ' "$DEMO_DIR/sottod.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "sottod exited: $(cat "$DEMO_DIR/sottod.log")"
        sleep 0.1
    done
    URL=$(sed -n 's/^sottod: listening on \(https:[^ ]*\)$/\1/p' "$DEMO_DIR/sottod.out")
    PIN=$(sed -n 's/^sottod: certificate sha256 \([0-9a-f]\{64\}\)$/\1/p' "$DEMO_DIR/sottod.out")
    [[ -n "$URL" && -n "$PIN" ]] || die "sottod did not print its address and certificate"
}
stop_server() {
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && die "sottod did not stop within 10 s of SIGTERM"
    wait "$SERVER_PID" || die "sottod exited with an error on SIGTERM"
    SERVER_PID=""
}
SCRUB=2
say "$ sottod --data-dir $DATA --listen 127.0.0.1:0 --set scrub_delay_s=$SCRUB"
start_server --listen 127.0.0.1:0 --set "scrub_delay_s=$SCRUB"
sed 's/^/     /' "$DEMO_DIR/sottod.out"
say "scrub_delay_s: how long traces of delivered messages may stay in the database's"
say "write-ahead log (WAL) before the server wipes them (default 60 s; $SCRUB s here, to keep the demo short)."

# raw_hits TEXT: occurrences of TEXT in the raw bytes of sottod.db and its WAL.
raw_hits() {
    local n=0 f
    for f in "$DATA/sottod.db" "$DATA/sottod.db-wal"; do
        [ -f "$f" ] || continue
        n=$((n + $(grep -c -a -o -F -- "$1" "$f" || true)))
    done
    echo "$n"
}
# wal_bytes: the size of the server's WAL (0 when absent).
wal_bytes() { stat -c %s "$DATA/sottod.db-wal" 2>/dev/null || echo 0; }
# wait_scrub: waits (at most 15 s) until the server has wiped its WAL; sets WAITED.
wait_scrub() {
    local t0 t1 i
    t0=$(date +%s%N)
    for i in $(seq 1 150); do
        [ "$(wal_bytes)" -eq 0 ] && break
        [ "$i" -eq 150 ] && die "the server's WAL is still $(wal_bytes) bytes 15 s later"
        sleep 0.1
    done
    t1=$(date +%s%N)
    WAITED=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.1f", d / 1e9 }')
}
# queue_of USER: the envelopes the server holds for USER, one line each
# (read through SQLite, read-only), with the sender the server knows.
queue_of() {
    python3 - "$DATA/sottod.db" "$1" <<'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
con.execute("PRAGMA busy_timeout = 5000")
rows = con.execute("SELECT hex(e.envelope_id), length(e.body), e.source_id, s.username"
                   " FROM envelopes e JOIN accounts a ON a.id = e.account_id"
                   " LEFT JOIN accounts s ON s.id = e.source_id"
                   " WHERE a.username = ? ORDER BY e.seq", (sys.argv[2],)).fetchall()
print("queued for %s on the server: %d envelope(s)" % (sys.argv[2], len(rows)))
for eid, n, src, name in rows:
    who = "sender: none (sealed)" if src == 0 else "sender: %s" % name
    print("  envelope %s..  %5d bytes  %s" % (eid[:12].lower(), n, who))
EOF
}
# scan DIR TEXTS TIMESTAMPS ENVELOPES [summary]: searches the raw bytes of
# every file under DIR for each line of the file TEXTS, each sender timestamp
# in TIMESTAMPS (as decimal text, protobuf varint, 6-byte big-endian as SQLite
# stores it, 8-byte big- and little-endian) and, for each "HEX_ID HEX_BODY"
# line of ENVELOPES, the envelope id and every 32-byte piece of the body.
# Prints a line per text and per group, then "total N"; with "summary",
# only "TEXTS_FOUND N_TEXTS TIMESTAMPS_FOUND N_TIMESTAMPS".
cat >"$DEMO_DIR/scan.py" <<'EOF'
import os, sys
root, texts_f, ts_f, env_f = sys.argv[1:5]
summary = len(sys.argv) > 5
blobs = []
for d, _, files in os.walk(root):
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            blobs.append(fh.read())
count = lambda n: sum(b.count(n) for b in blobs)
total = 0
texts = [l.rstrip("\n") for l in open(texts_f, encoding="utf-8") if l.strip()]
text_hits = [count(t.encode()) for t in texts]
def encodings(v):
    var, x = bytearray(), v
    while True:
        var.append((x & 0x7F) | (0x80 if x >> 7 else 0))
        x >>= 7
        if not x:
            break
    return [str(v).encode(), bytes(var), v.to_bytes(6, "big"), v.to_bytes(8, "big"),
            v.to_bytes(8, "little")]
ts = sorted({int(l) for l in open(ts_f) if l.strip().isdigit()})
ts_hits = [sum(count(n) for n in encodings(v)) for v in ts]
env = []
for line in open(env_f):
    p = line.split()
    if len(p) == 2:
        body = bytes.fromhex(p[1])
        env += [bytes.fromhex(p[0])] + [body[o:o + 32] for o in range(0, len(body) - 31, 32)]
env_hits = sum(count(n) for n in env)
if summary:
    print(sum(1 for h in text_hits if h), len(texts), sum(1 for h in ts_hits if h), len(ts))
    sys.exit(0)
for t, h in zip(texts, text_hits):
    print("%3d hits  %s" % (h, t))
if ts:
    print("%3d hits  the sender timestamps (message ids) of all %d messages sent, %d..%d"
          % (sum(ts_hits), len(ts), ts[0], ts[-1]))
    print("          (each as text, as a protobuf varint and as 6- and 8-byte integers)")
if env:
    print("%3d hits  the sealed envelopes seen queued for bob in step %s: their ids and every 32"
          " bytes of their bodies" % (env_hits, os.environ.get("SEALED_STEP", "?")))
    print("          (the same search found them %s times while they were queued)"
          % os.environ.get("SEALED_SEEN", "?"))
print("total", sum(text_hits) + sum(ts_hits) + env_hits)
EOF
scan() { python3 "$DEMO_DIR/scan.py" "$@"; }

# ---------------------------------------------------------------------------
step "An independent auditor starts watching the server's key directory"
AUD="$DEMO_DIR/auditor"
say "(in real life on someone else's machine: it checks every change to the log of keys"
say " and countersigns what it checked; clients that list its key accept nothing else)"
say "$ sotto-auditor init --dir $AUD --server $URL --pin $PIN"
timeout 30 "$AUDITOR" init --dir "$AUD" --server "$URL" --pin "$PIN" >"$DEMO_DIR/out" 2>"$DEMO_DIR/err" ||
    die "sotto-auditor init failed: $(cat "$DEMO_DIR/err")"
sed 's/^/     /' "$DEMO_DIR/out"
AUDKEY=$(sed -n 's/^auditor key: \([0-9a-f]\{64\}\)$/\1/p' "$DEMO_DIR/out")
[[ -n "$AUDKEY" ]] || die "sotto-auditor did not print its key"
PORT=${URL##*:}
say "The operator adds the auditor's key to sottod's configuration and restarts it:"
say "$ sottod --data-dir $DATA --listen 127.0.0.1:$PORT --set scrub_delay_s=$SCRUB --set kt_auditors=$AUDKEY"
stop_server
start_server --listen "127.0.0.1:$PORT" --set "scrub_delay_s=$SCRUB" --set "kt_auditors=$AUDKEY"

# ---------------------------------------------------------------------------
step "Register alice, bob and carol (each pins the certificate fingerprint printed above)"
for u in alice bob carol; do
    as "$u" --server "$URL" --pin "$PIN" register "$u"
done
say "Each of them requires the auditor's countersignature on the key directory:"
for u in alice bob carol; do
    as "$u" kt auditor add "$AUDKEY"
done

# ---------------------------------------------------------------------------
step "The auditor checks the key directory's log and countersigns it"
say "$ sotto-auditor run --dir $AUD --once"
timeout 60 "$AUDITOR" run --dir "$AUD" --once >"$DEMO_DIR/out" 2>"$DEMO_DIR/err" ||
    die "sotto-auditor run failed: $(cat "$DEMO_DIR/err" "$DEMO_DIR/out")"
sed 's/^/     /' "$DEMO_DIR/out"
say "Before alice ever writes to bob, her client checks bob's keys against the log: a VRF"
say "proof for his name, his entry in the directory, the directory in the log, and the"
say "log's head signed by the server and countersigned by the auditor."
as alice kt check bob

# ---------------------------------------------------------------------------
step "alice and bob talk"
TEXTS=()
t1="Hi Bob! Did you get the keys to the allotment?"
t2="Hi Alice, yes -- they were under the blue flowerpot."
t3="Great. Meet at the greenhouse at seven?"
t4="Seven it is. I'll bring the seedlings."
TEXTS+=("$t1" "$t2" "$t3" "$t4")
wait_scrub # (a clean WAL, so that the count below is this message's alone)
A0=$(raw_hits alice)
as alice send bob "$t1"
A1=$(raw_hits alice)
queue_of bob | sed 's/^/     /'
say "bob is a stranger to alice's client, so this first message goes identified: the server"
say "sees who wrote it (\"alice\" in the raw bytes of sottod.db and its WAL: $A0 before, $A1 now)."
[ "$A1" -gt "$A0" ] || die "alice's identified message added no \"alice\" to the server's files"
as bob receive
expect "alice [request]: $t1"
say "alice is not among bob's contacts yet: her first message is a message request (no"
say "receipts, no profile shared) until bob accepts it -- or deletes or blocks it."
as bob accept alice
as bob send alice "$t2"
as alice receive
expect "bob: $t2"
as alice send bob "$t3"
as bob receive
expect "alice: $t3"
as bob send alice "$t4"
as alice receive
expect "bob: $t4"

# ---------------------------------------------------------------------------
step "Sealed sender: bob is offline, alice writes to him, and the server cannot tell who wrote"
say "Now that bob accepted alice, their messages go sealed: the sender's name travels inside the"
say "encryption, with a short-lived certificate from the server that the recipient's client checks;"
say "to the server the sender shows only a delivery token, proof that the recipient accepted them."
say "Identified (sender visible to the server): a first message to a stranger, as alice's above,"
say "and the copies of one's own messages to one's own other devices."
ts1="P.S. Bring gloves, the nettles are back by the shed."
TEXTS+=("$ts1")
wait_scrub
S0=$(raw_hits alice)
as alice send bob "$ts1"
S1=$(raw_hits alice)
queue_of bob | sed 's/^/     /'
# the sealed envelope as queued (id and body), for the final scan
python3 - "$DATA/sottod.db" >"$DEMO_DIR/sealed_env" <<'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
con.execute("PRAGMA busy_timeout = 5000")
for eid, body in con.execute("SELECT hex(e.envelope_id), hex(e.body) FROM envelopes e JOIN accounts"
                             " a ON a.id = e.account_id WHERE a.username = 'bob' AND e.source_id = 0"):
    print(eid, body)
EOF
[ -s "$DEMO_DIR/sealed_env" ] || die "no envelope without a sender queued for bob: alice did not seal"
export SEALED_STEP=$STEP SEALED_SEEN
SEALED_SEEN=$(scan "$DATA" /dev/null /dev/null "$DEMO_DIR/sealed_env" | sed -n 's/^total //p')
[ "$SEALED_SEEN" -gt 0 ] || die "the scan does not find the sealed envelope while it is queued"
NSEALED=$(grep -c . "$DEMO_DIR/sealed_env")
[ "$NSEALED" -eq "$(queue_of bob | grep -c 'sender: ')" ] || die "an envelope queued for bob names its sender"
if [ "$NSEALED" -gt 1 ]; then
    say "(also queued: the delivery receipt alice's client sent for bob's last message, sealed too)"
fi
say "\"alice\" in the raw bytes of sottod.db and its WAL: $S0 before (her account), $S1 with this"
say "message queued: the envelope names no sender, on disk or anywhere else on the server."
[ "$S1" -eq "$S0" ] || die "alice's sealed message added \"alice\" to the server's files ($S0 -> $S1)"
as bob receive
expect "alice: $ts1"
say "${G}bob's client opened it, checked alice's certificate inside, and shows it as hers.${N}"

# ---------------------------------------------------------------------------
step "alice sends bob a file"
FILE="$DEMO_DIR/planting-plan.txt"
FILE_MARK="PLANTING-PLAN-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
{
    echo "$FILE_MARK -- the secret planting plan"
    for bed in 1 2 3 4 5 6 7 8; do
        echo "bed $bed: tomatoes, basil, marigolds; water at dawn"
    done
    head -c 48000 /dev/urandom | base64 -w 76
} >"$FILE"
t5="Here is the planting plan."
TEXTS+=("$t5")
as alice send --file "$FILE" --text "$t5" bob
as bob receive
expect "alice: $t5" "planting-plan.txt"
quiet bob --json history --limit 1 alice
GOT=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    for a in m.get("attachments") or []:
        if a.get("path"):
            print(a["path"])
' "$DEMO_DIR/out" | tail -n 1)
[[ -n "$GOT" && -f "$GOT" ]] || die "bob has no saved copy of the file"
SUM_SENT=$(sha256sum <"$FILE" | cut -d' ' -f1)
SUM_GOT=$(sha256sum <"$GOT" | cut -d' ' -f1)
say "sent:     $SUM_SENT  planting-plan.txt ($(stat -c %s "$FILE") bytes)"
say "received: $SUM_GOT  $GOT"
[ "$SUM_SENT" = "$SUM_GOT" ] || die "the file bob received differs from the one alice sent"
say "${G}SHA-256 equal: the file arrived intact.${N}"

# ---------------------------------------------------------------------------
step "The three talk in a group"
t6="Welcome to the garden club!"
t7="Thanks Alice -- carol, do you have spare compost?"
t8="Two bags. I'll drop them off on Saturday."
TEXTS+=("garden club" "$t6" "$t7" "$t8")
as alice group create "garden club" bob carol
as bob receive
expect "garden club"
as carol receive
expect "garden club"
say "carol was added by someone she never accepted: the group is a request until she accepts it."
as carol accept --group "garden club"
as alice group send "garden club" "$t6"
as bob group send "garden club" "$t7"
as carol receive
expect "alice @ garden club: $t6" "bob @ garden club: $t7"
as carol group send "garden club" "$t8"
as alice receive
expect "bob @ garden club: $t7" "carol @ garden club: $t8"
as bob receive
expect "alice @ garden club: $t6" "carol @ garden club: $t8"

# ---------------------------------------------------------------------------
step "Receipts, a reaction, an edit and a disappearing message"
say "(all of it travels inside the end-to-end encryption: the server relays ciphertext only)"
t9="Shall I bring the watering cans?"
t9e="Shall I bring the watering cans and the long hose?"
TEXTS+=("$t9" "$t9e")
as alice send bob "$t9"
TS9=$(sed -n 's/.*(timestamp \([0-9]*\)).*/\1/p' "$DEMO_DIR/out")
[[ "$TS9" =~ ^[0-9]+$ ]] || die "send printed no message id: $(cat "$DEMO_DIR/out")"
as bob receive
expect "alice: $t9"
say "bob's client sent a delivery receipt (batched, after a random 1-5 s); now he reads it:"
as bob read alice
as alice receive
expect "bob read" " $TS9"
as alice history --limit 1 bob
expect "receipts: bob=read"
as bob react alice --target-author alice --target-timestamp "$TS9" "👍"
as alice receive
expect "bob reacted 👍 to your message $TS9"
say "alice changes her mind and edits her message (the author only, within 24 hours):"
as alice send --edit-timestamp "$TS9" bob "$t9e"
as bob receive
expect "alice edited $TS9: $t9e"
as bob history --limit 1 alice
expect "alice: $t9e" "(edited)" "reactions: 👍 me"
say "disappearing messages: alice sets a 10-second timer for the conversation"
as alice timer bob 10s
as bob receive
expect "alice set disappearing messages to 10 s"
t10="The gate code is 4711-$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')."
TEXTS+=("$t10")
as alice send bob "$t10"
as bob receive
expect "alice: $t10"
as bob read alice
say "bob read it: 10 s later it is gone from his phone, and from alice's (her timer ran from the send)."
sleep 11
as bob history --limit 3 alice
grep -q -F -- "$t10" "$DEMO_DIR/out" && die "the disappearing message is still in bob's history"
as alice history --limit 3 bob
grep -q -F -- "$t10" "$DEMO_DIR/out" && die "the disappearing message is still in alice's history"
for who in alice bob; do
    if grep -r -q -a -F -- "$t10" "$DEMO_DIR/$who"; then
        die "the disappearing message is still somewhere in $who's files"
    fi
done
say "${G}Searched every file of alice's and bob's devices (database and WAL included): the text is gone.${N}"

# ---------------------------------------------------------------------------
step "Safety numbers: alice and bob compare them (in person, or by scanning the QR code)"
as alice safety-number --no-qr bob
quiet alice --json safety-number bob
SN_A=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["safety_number"])' "$DEMO_DIR/out")
as bob safety-number --no-qr alice
quiet bob --json safety-number alice
SN_B=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["safety_number"])' "$DEMO_DIR/out")
[ "$SN_A" = "$SN_B" ] || die "safety numbers differ: alice sees $SN_A, bob sees $SN_B"
say "${G}Equal on both sides: no one sits in the middle of this conversation.${N}"

# ---------------------------------------------------------------------------
step "Search every file the server wrote for what was said, and when"
say "alice, bob and carol fetch what is still queued for them (receipts), quietly."
for u in alice bob carol; do quiet "$u" receive; done
LEFT=$(python3 - "$DATA/sottod.db" <<'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
con.execute("PRAGMA busy_timeout = 5000")
print(con.execute("SELECT count(*) FROM envelopes").fetchone()[0])
EOF
)
say "envelopes left on the server: $LEFT -- every message was delivered and acknowledged."
[ "$LEFT" -eq 0 ] || die "$LEFT envelopes still queued after everyone received"
WAL0=$(wal_bytes)
wait_scrub
say "The server's WAL held $WAL0 bytes after the last delivery; ${WAITED} s later (scrub_delay_s=$SCRUB)"
say "the server had copied it into the database, where deleted rows and free pages are zeroed,"
say "and truncated it: $(wal_bytes) bytes now."
say "files in $DATA, each read as raw bytes (not through SQLite):"
find "$DATA" -type f -printf '%P (%s bytes)\n' | sort | sed 's/^/     /'
# The database's free pages are inside sottod.db and so in the raw bytes
# searched; say how many there are, and that the WAL and SHM are searched.
FREEPAGES=$(python3 - "$DATA/sottod.db" <<'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
n = con.execute("PRAGMA freelist_count").fetchone()[0]
ps = con.execute("PRAGMA page_size").fetchone()[0]
print("%d free pages (%d bytes)" % (n, n * ps))
EOF
) || FREEPAGES="free pages (count unknown)"
fsize() { if [ -e "$1" ]; then printf '%s bytes' "$(stat -c %s "$1")"; else printf 'absent'; fi; }
say "scanned: the database sottod.db ($(fsize "$DATA/sottod.db"); its $FREEPAGES included), its WAL"
say "sottod.db-wal ($(fsize "$DATA/sottod.db-wal")) and SHM sottod.db-shm ($(fsize "$DATA/sottod.db-shm")),"
say "the attachment blobs, keys and certificate: every file under $DATA."
NEEDLES=("${TEXTS[@]}" "$FILE_MARK" "tomatoes, basil, marigolds" "$(sed -n 12p "$FILE" | cut -c 1-40)")
printf '%s\n' "${NEEDLES[@]}" >"$DEMO_DIR/texts"
NTS=$(sort -u "$DEMO_DIR/timestamps" | grep -c . || true)
[ "$NTS" -ge 10 ] || die "only $NTS sender timestamps recorded: the demo's bookkeeping is broken"
scan "$DATA" "$DEMO_DIR/texts" "$DEMO_DIR/timestamps" "$DEMO_DIR/sealed_env" >"$DEMO_DIR/scan.out" ||
    die "the scan failed"
sed '$d; s/^/     /' "$DEMO_DIR/scan.out"
TOTAL=$(sed -n 's/^total //p' "$DEMO_DIR/scan.out")
[[ "$TOTAL" =~ ^[0-9]+$ ]] || die "the scan printed no total"
for needle in "${NEEDLES[@]}" $(sort -u "$DEMO_DIR/timestamps"); do
    if grep -q -a -F -- "$needle" "$DEMO_DIR/sottod.log" "$DEMO_DIR/sottod.out"; then
        say "${R}the server's log contains: $needle${N}"
        TOTAL=$((TOTAL + 1))
    fi
done
if [ "$TOTAL" -ne 0 ]; then
    die "$TOTAL hits on the server for delivered messages"
fi
say "${G}0 hits in the database (free pages included), WAL, SHM, every other server file and the log:${N}"
say "${G}none of the ${#NEEDLES[@]} texts (nor the file's content), none of the $NTS sender timestamps, nothing of${N}"
say "${G}the sealed envelope. Nor who wrote to whom: sealed envelopes never named their sender, and${N}"
say "${G}the identified ones (alice's first message) are gone with everything else that was delivered.${N}"
# Nor any private key: every private key in the three clients' stores
# (identity, signed and one-time prekeys, login key, account key), raw or hex.
read -r NKEYS KEYHITS PUBHITS < <(python3 - "$DATA" "$DEMO_DIR"/*/sotto/*/store.db <<'EOF'
import os, sqlite3, sys
secret, public = [], []
for db in sys.argv[2:]:
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    q = ["SELECT private_key FROM sotto_local_identity", "SELECT private_key FROM sotto_signed_prekeys",
         "SELECT private_key FROM sotto_prekeys WHERE private_key IS NOT NULL",
         "SELECT substr(value, 1, 32) FROM client_config WHERE key = 'auth_sk'",
         "SELECT value FROM client_config WHERE key = 'account_sk'"]
    for sql in q:
        secret += [bytes(r[0])[-32:] for r in con.execute(sql)]
    public += [bytes(r[0])[-32:] for r in con.execute("SELECT public_key FROM sotto_local_identity")]
blobs = []
for d, _, files in os.walk(sys.argv[1]):
    blobs += [open(os.path.join(d, f), "rb").read() for f in files]
count = lambda keys: sum(b.count(k) + b.count(k.hex().encode()) for k in keys for b in blobs)
print(len(secret), count(secret), count(public))
EOF
)
say "private keys of alice, bob and carol searched for: $NKEYS; found on the server: $KEYHITS"
say "(their identity public keys, which the server must hold, are found: $PUBHITS hits)"
[ "$KEYHITS" -eq 0 ] || die "private key material found on the server"
[ "$PUBHITS" -gt 0 ] || die "the key search does not even find the public keys: it is broken"

# The same search where the plaintext does live, to show that it finds it:
# bob's own device keeps his history and the file (protect it with disk
# encryption).
read -r CONTROL _ CONTROL_TS _ < <(scan "$DEMO_DIR/bob" "$DEMO_DIR/texts" "$DEMO_DIR/timestamps" /dev/null summary)
say "For comparison, the same search on bob's own device finds $CONTROL of the ${#NEEDLES[@]} texts and"
say "$CONTROL_TS of the $NTS timestamps (his history and the file live there)."
[ "$CONTROL" -gt 0 ] || die "the search found no text even on bob's device: the search itself is broken"
[ "$CONTROL_TS" -gt 0 ] || die "the search found no timestamp even on bob's device: the search itself is broken"

# What the operator could hand over about alice, if compelled: no more than
# her account's creation date, last-seen date, device count and public keys.
say "What the operator could hand over about alice, if compelled:"
say "$ sottod admin --data-dir $DATA disclose alice"
timeout 30 "$SOTTOD" admin --data-dir "$DATA" disclose alice >"$DEMO_DIR/disclose.json" 2>"$DEMO_DIR/err" ||
    die "sottod admin disclose failed: $(cat "$DEMO_DIR/err")"
python3 -m json.tool "$DEMO_DIR/disclose.json" 2>/dev/null | sed 's/^/     /' ||
    sed 's/^/     /' "$DEMO_DIR/disclose.json"
python3 - "$DEMO_DIR/disclose.json" <<'EOF' || die "disclose holds more than dates, the device count and public keys"
import json, sys
d = json.load(open(sys.argv[1]))
top = {"username", "account_created", "last_seen_date", "device_count", "account_public_key",
       "devices", "not_held"}
dev = {"device_id", "identity_public_key", "auth_public_key", "signed_prekey_public_key"}
assert set(d) <= top, set(d) - top
assert all(set(x) <= dev for x in d["devices"])
text = json.dumps({k: v for k, v in d.items() if k != "not_held"})
assert "bob" not in text and "carol" not in text, "names a correspondent"
EOF
say "${G}Dates, the device count and public keys: no correspondent, no time of day, no message.${N}"

# ---------------------------------------------------------------------------
step "The auditor's view, and alice's"
say "$ sotto-auditor run --dir $AUD --once; sotto-auditor status --dir $AUD"
timeout 60 "$AUDITOR" run --dir "$AUD" --once >/dev/null 2>"$DEMO_DIR/err" ||
    die "sotto-auditor run failed: $(cat "$DEMO_DIR/err")"
timeout 30 "$AUDITOR" status --dir "$AUD" >"$DEMO_DIR/out" 2>"$DEMO_DIR/err" ||
    die "sotto-auditor status failed: $(cat "$DEMO_DIR/err")"
sed 's/^/     /' "$DEMO_DIR/out"
as alice kt status

# ---------------------------------------------------------------------------
step "Stop the server and clean up"
stop_server
say "sottod stopped; $DEMO_DIR removed."
printf '\n%sDemo complete.%s\n' "$G" "$N"
