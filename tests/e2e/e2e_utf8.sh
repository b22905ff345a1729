#!/usr/bin/env bash
# A 4 KiB UTF-8 text (emoji, ZWJ sequences, combining marks, CJK, RTL,
# newlines, tabs) round-trips byte-exact, given on the command line and on
# stdin, under LANG=C and under a UTF-8 locale, in --json and in human
# output. Invalid UTF-8 and over-long texts are refused with exit 2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

server_start
register alice
register bob

python3 - "$E2E_DIR/text4k" <<'EOF'
import sys
parts = [
    "Grüße aus Köln — naïve café, Ångström, œuvre; ",
    "日本語のテキスト、中文文本，한국어 텍스트; ",
    "emoji 😀🎉🔐🦀🇩🇪🏳️‍🌈 👩‍👩‍👧‍👦 👍🏽; ",
    "combining: e\u0301 a\u0308 n\u0303; ",
    "RTL: שלום עולם مرحبا بالعالم; ",
    "math: ∀x∈ℝ, x²≥0 ≠ ∞; ",
    "line\nbreaks\n\tand tabs\t; ",
    "quotes \"double\" 'single' `back` \\backslash\\ $HOME %s %n; ",
]
out = ""
i = 0
while True:
    p = parts[i % len(parts)]
    if len((out + p).encode("utf-8")) > 4096:
        break
    out += p
    i += 1
out += "x" * (4096 - len(out.encode("utf-8")))
assert len(out.encode("utf-8")) == 4096
open(sys.argv[1], "w", encoding="utf-8").write(out)
EOF

# body_is FILE TEXTFILE: the single message event in FILE has exactly the
# content of TEXTFILE as body.
body_is() {
    python3 - "$1" "$2" <<'EOF' || fail "received body differs from the 4 KiB text sent ($3)"
import json, sys
want = open(sys.argv[2], encoding="utf-8").read()
msgs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
msgs = [m for m in msgs if m.get("type") == "message"]
assert len(msgs) == 1, "expected 1 message, got %d" % len(msgs)
got = msgs[0]["body"]
if got != want:
    n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    sys.exit("lengths %d vs %d, first difference at character %d" % (len(got), len(want), n))
EOF
}

for loc in C C.UTF-8; do
    export LC_ALL=$loc LANG=$loc
    log "LC_ALL=$loc: the text as an argument, received with --json"
    sc_ok alice send bob "$(cat "$E2E_DIR/text4k")"
    receive_json bob "$E2E_DIR/r.json"
    body_is "$E2E_DIR/r.json" "$E2E_DIR/text4k" "argv, $loc"

    log "LC_ALL=$loc: the text on stdin, received with --json"
    sc_in bob "$E2E_DIR/text4k" send alice -
    assert_rc 0 "send from stdin under $loc"
    receive_json alice "$E2E_DIR/r.json"
    body_is "$E2E_DIR/r.json" "$E2E_DIR/text4k" "stdin, $loc"

    log "LC_ALL=$loc: human output carries the same bytes"
    sc_ok alice send bob "$(cat "$E2E_DIR/text4k")"
    sc_ok bob receive
    python3 - "$E2E_DIR/last.out" "$E2E_DIR/text4k" <<'EOF' || fail "human output under $loc does not contain the exact text"
import sys
out = open(sys.argv[1], "rb").read()
want = open(sys.argv[2], "rb").read()
assert want in out, "text not found byte-exact in the output (%d bytes)" % len(out)
EOF

    log "LC_ALL=$loc: history returns it unchanged"
    sc_ok bob --json history --limit 1 alice
    body_is "$E2E_DIR/last.out" "$E2E_DIR/text4k" "history, $loc"
done
export LC_ALL=C.UTF-8 LANG=C.UTF-8

log "invalid UTF-8 is refused (exit 2) and nothing is sent"
printf 'bad \xff\xfe bytes' >"$E2E_DIR/bad-utf8"
sc_in alice "$E2E_DIR/bad-utf8" send bob -
assert_rc 2 "send invalid UTF-8"
printf 'overlong \xc0\xaf slash' >"$E2E_DIR/overlong"
sc_in alice "$E2E_DIR/overlong" send bob -
assert_rc 2 "send an overlong UTF-8 encoding"
printf 'a surrogate \xed\xa0\x80 here' >"$E2E_DIR/surrogate"
sc_in alice "$E2E_DIR/surrogate" send bob -
assert_rc 2 "send an encoded surrogate"
printf 'nul \0 inside' >"$E2E_DIR/nul"
sc_in alice "$E2E_DIR/nul" send bob -
assert_rc 2 "send a text with NUL"

log "a text over 64 KiB is refused (exit 2); exactly 64 KiB goes through"
python3 -c 'import sys; sys.stdout.write("é" * 32768 + "x")' >"$E2E_DIR/big"
sc_in alice "$E2E_DIR/big" send bob -
assert_rc 2 "send 65537 bytes"
python3 -c 'import sys; sys.stdout.write("é" * 32768)' >"$E2E_DIR/max"
sc_in alice "$E2E_DIR/max" send bob -
assert_rc 0 "send 65536 bytes"
receive_json bob "$E2E_DIR/r.json"
body_is "$E2E_DIR/r.json" "$E2E_DIR/max" "64 KiB"

log "ok"
