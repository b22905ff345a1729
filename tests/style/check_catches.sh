#!/usr/bin/env bash
# tests/style/check_catches.sh -- the style checks catch what they must and
# nothing else: scripts/check-banned.sh on fixtures/banned.c reports exactly
# the lines marked BAD, and scripts/check-format.sh fails on
# fixtures/unformatted.c and passes fixtures/formatted.c.
#   usage: check_catches.sh banned|format
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
fx="$here/fixtures"
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

case "${1:-}" in
banned)
    out=$("$root/scripts/check-banned.sh" --production "$fx/banned.c" 2>&1)
    rc=$?
    [ "$rc" = 1 ] || fail "check-banned.sh exit $rc on the fixture, want 1: $out"
    got=$(printf '%s\n' "$out" | sed -n 's/^tests\/style\/fixtures\/banned\.c:\([0-9]*\): \([a-z]*\).*/\1 \2/p')
    want=$(grep -n 'BAD' "$fx/banned.c" | grep -v '^[0-3]:' |
        sed -n 's/^\([0-9]*\):[^a-z]*\([a-z]*\).*/\1 \2/p')
    # int n = atoi / char *t = strtok: the name is the called one, not the type
    want=$(printf '%s\n' "$want" | while read -r no name; do
        line=$(sed -n "${no}p" "$fx/banned.c")
        called=$(printf '%s' "$line" | grep -oE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|strtok|memcmp)\b' | head -n 1)
        echo "$no $called"
    done)
    [ "$got" = "$want" ] || fail "check-banned.sh reported
$got
want
$want"
    n=$(printf '%s\n' "$want" | wc -l)
    [ "$n" = 8 ] || fail "the fixture should hold 8 BAD lines, found $n"
    # without --production, memcmp outside include/ lib/ server/ client/ is fine
    out=$("$root/scripts/check-banned.sh" "$fx/banned.c" 2>&1)
    printf '%s\n' "$out" | grep -q 'memcmp' && fail "memcmp reported outside production code: $out"
    printf '%s\n' "$out" | grep -q '7 violation' || fail "want 7 violations without --production: $out"
    echo "check-banned.sh: reports the 8 BAD lines of the fixture and nothing else"
    ;;
format)
    out=$("$root/scripts/check-format.sh" "$fx/unformatted.c" 2>&1)
    rc=$?
    [ "$rc" = 1 ] || fail "check-format.sh exit $rc on an unformatted file, want 1: $out"
    printf '%s\n' "$out" | grep -qx 'tests/style/fixtures/unformatted.c' ||
        fail "check-format.sh did not name the unformatted file: $out"
    out=$("$root/scripts/check-format.sh" "$fx/formatted.c" 2>&1) ||
        fail "check-format.sh fails on a formatted file: $out"
    echo "check-format.sh: fails on the unformatted fixture, passes the formatted one"
    ;;
*)
    fail "usage: check_catches.sh banned|format"
    ;;
esac
