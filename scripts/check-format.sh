#!/usr/bin/env bash
# scripts/check-format.sh -- the C sources must be formatted by the
# repository's .clang-format (clang-format 14, as on Debian 12).
#
#   scripts/check-format.sh          check: lists the files clang-format would
#                                    change, exits 1 if there are any
#   scripts/check-format.sh --fix    reformat those files in place
#   scripts/check-format.sh --diff   check and show what would change
#   scripts/check-format.sh [--diff] FILE...   only these files
#
# Files: every .c/.h file git knows (tracked, plus new files not ignored),
# except generated and vendored code (EXCLUDE below). Runs from any
# directory; ctest runs it as the test `check_format` (label style), and on
# the fixture tests/style/fixtures/unformatted.c (`check_format_catches`).
# CLANG_FORMAT=/path/to/clang-format overrides the binary.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

mode=check
case "${1:-}" in
--fix) mode=fix && shift ;;
--diff) mode=diff && shift ;;
-h | --help)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
-*)
    echo "check-format: unknown option $1 (see --help)" >&2
    exit 2
    ;;
esac
given=()
for f in "$@"; do
    given+=("$(realpath --relative-to="$root" "$f")")
done

# generated (protoc-c output) and vendored code is not ours to format
# (and the checks' own test fixtures)
EXCLUDE='(\.pb-c\.[ch]$|(^|/)(third_party|vendor|vendored|external)/|^tests/style/fixtures/)'

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    for c in clang-format-14 clang-format; do
        if command -v "$c" >/dev/null 2>&1; then
            cf=$(command -v "$c")
            break
        fi
    done
fi
if [ -z "$cf" ]; then
    echo "check-format: clang-format not found (scripts/deps.sh installs it)" >&2
    exit 2
fi
ver=$("$cf" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$ver" != "14" ]; then
    echo "check-format: warning: $cf is version ${ver:-?}, the reference is 14 (Debian 12);" \
        "other versions format some constructs differently" >&2
fi

cd "$root"
if [ ${#given[@]} -gt 0 ]; then
    files=("${given[@]}")
elif git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' |
        grep -Ev "$EXCLUDE" | sort -u)
else
    mapfile -t files < <(find include lib server client auditor tests bench -name '*.[ch]' |
        grep -Ev "$EXCLUDE" | sort)
fi

bad=()
for f in "${files[@]}"; do
    [ -f "$f" ] || continue # deleted in the work tree, not yet in the index
    if ! "$cf" --style="file:$root/.clang-format" --dry-run -Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done

if [ "$mode" = fix ]; then
    if [ ${#bad[@]} -gt 0 ]; then
        "$cf" --style="file:$root/.clang-format" -i "${bad[@]}"
    fi
    echo "check-format: reformatted ${#bad[@]} of ${#files[@]} files"
    exit 0
fi

if [ ${#bad[@]} -eq 0 ]; then
    echo "check-format: ${#files[@]} files, all formatted"
    exit 0
fi
for f in "${bad[@]}"; do
    echo "$f"
    if [ "$mode" = diff ]; then
        "$cf" --style="file:$root/.clang-format" "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" - || true
    fi
done
echo "check-format: ${#bad[@]} of ${#files[@]} files are not formatted by .clang-format" \
    "(fix: scripts/check-format.sh --fix)" >&2
exit 1
