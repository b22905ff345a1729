#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR/tests/fuzz for SECONDS each, on a
# scratch copy of its seed corpus. Exits non-zero on the first crash.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
found=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  found=1
  name=$(basename "$bin"); short=${name#fuzz_}
  work=$(mktemp -d)
  cp -r "$root/tests/fuzz/corpus/$short/." "$work/" 2>/dev/null || true
  echo "fuzz: $name for ${secs}s"
  ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" 2>"$work.log" || { tail -50 "$work.log"; rm -rf "$work"; exit 1; }
  grep -E 'stat::number_of_executed_units' "$work.log" || true
  rm -rf "$work" "$work.log"
done
[ "$found" = 1 ] || { echo "fuzz: no fuzz targets built"; exit 1; }
echo "fuzz: all targets ran clean"
