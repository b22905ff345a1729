#!/usr/bin/env bash
# scripts/check-banned.sh -- fails on calls we do not use (docs: README.md
# "Tests", /work/shared STYLE "Style checked by machines").
#
# 1. Everywhere (every .c/.h file git knows, tests and benchmarks included):
#      strcpy strcat sprintf vsprintf gets atoi strtok
#    as calls -- not in comments or string literals, not as part of another
#    name (snprintf, vsnprintf, strtok_r, fgets, atoll are fine).
# 2. In production code (include/ lib/ server/ client/ auditor/): memcmp and bcmp.
#    Secrets (MACs, keys, tokens, digests) are compared with sodium_memcmp
#    (constant time). A memcmp that must stay (an ordering, a hash-table key
#    lookup, a public value) is listed in scripts/banned-allow.txt with the
#    reason it is safe; an entry that no longer matches a line is an error
#    too, so the list stays true. Tests and benchmarks may memcmp their
#    own results.
#
#   scripts/check-banned.sh                      the whole tree
#   scripts/check-banned.sh [--production] FILE...   only these files
#                      (--production: apply rule 2 to them wherever they are)
# Exit 0: clean; 1: violations (printed as FILE:LINE: ...); 2: cannot run.
# ctest runs it as the test `check_banned` (label style), and on the
# fixture tests/style/fixtures/banned.c (`check_banned_catches`).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
production=0
case "${1:-}" in
-h | --help)
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
--production)
    production=1
    shift
    ;;
esac
given=()
for f in "$@"; do
    given+=("$(realpath --relative-to="$root" "$f")")
done
cd "$root"

if ! command -v python3 >/dev/null 2>&1; then
    echo "check-banned: python3 not found (scripts/deps.sh installs it)" >&2
    exit 2
fi

# generated, vendored, and the checks' own test fixtures
EXCLUDE='(\.pb-c\.[ch]$|(^|/)(third_party|vendor|vendored|external)/|^tests/style/fixtures/)'
if [ ${#given[@]} -gt 0 ]; then
    files=$(printf '%s\n' "${given[@]}")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' | grep -Ev "$EXCLUDE" | sort -u)
else
    files=$(find include lib server client auditor tests bench -name '*.[ch]' | grep -Ev "$EXCLUDE" | sort)
fi

PY=$(
    cat <<'PYEOF'
import re, sys

BANNED = {
    "strcpy": "snprintf, or memcpy of a length you checked",
    "strcat": "snprintf, or memcpy of a length you checked",
    "sprintf": "snprintf",
    "vsprintf": "vsnprintf",
    "gets": "fgets",
    "atoi": "strtol/strtoul with end and range checks",
    "strtok": "strtok_r, or a parser over the bounded buffer",
}
CALL = re.compile(r"\b(" + "|".join(BANNED) + r")\s*\(")
MEMCMP = re.compile(r"\b(memcmp|bcmp)\b")
PRODUCTION = ("include/", "lib/", "server/", "client/", "auditor/")
ALL_PRODUCTION = sys.argv[2] == "1"


def strip(text):
    """Blanks comments and string/char literals, keeping line breaks."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1 : j - 1]) + (c if j - 1 > i else ""))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


allow = []  # [file, snippet, reason, used]
with open(sys.argv[1], encoding="utf-8") as fh:
    for no, line in enumerate(fh, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) != 3 or not all(parts):
            print(f"{sys.argv[1]}:{no}: want FILE | TEXT ON THE LINE | REASON")
            sys.exit(2)
        allow.append(parts + [False])

bad = 0
nfiles = 0
for path in sys.stdin.read().split():
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            raw = fh.read()
    except FileNotFoundError:
        continue  # deleted in the work tree
    nfiles += 1
    raw_lines = raw.split("\n")
    for no, line in enumerate(strip(raw).split("\n"), 1):
        for m in CALL.finditer(line):
            print(f"{path}:{no}: {m.group(1)}() is banned: use {BANNED[m.group(1)]}")
            bad += 1
        if ALL_PRODUCTION or path.startswith(PRODUCTION):
            for m in MEMCMP.finditer(line):
                hit = [a for a in allow if a[0] == path and a[1] in raw_lines[no - 1]]
                for a in hit:
                    a[3] = True
                if not hit:
                    print(f"{path}:{no}: {m.group(1)} in production code: use sodium_memcmp "
                          "(constant time), or list this line in scripts/banned-allow.txt "
                          "with the reason it is safe")
                    bad += 1
for a in allow if not sys.argv[3:] else []:
    if not a[3]:
        print(f"scripts/banned-allow.txt: stale entry (no such line): {a[0]} | {a[1]}")
        bad += 1
if bad:
    print(f"check-banned: {bad} violation(s) in {nfiles} files", file=sys.stderr)
    sys.exit(1)
print(f"check-banned: {nfiles} files, no banned calls")
PYEOF
)
printf '%s\n' "$files" | python3 -c "$PY" scripts/banned-allow.txt "$production" ${given[@]:+partial}
