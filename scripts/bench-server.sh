#!/usr/bin/env bash
# Server load benchmark: sottod with N authenticated TLS WebSocket
# connections exchanging M envelopes (as fast as possible and at a fixed
# rate), plus the same pattern through mosquitto (QoS 1, TLS) as a
# reference row; then the same sends sealed (sealed sender v1: delivery
# tokens, from connections that never log in; --no-sealed skips them),
# compared with the identified ones. Prints one table. Ends by itself (each
# phase has a time limit). Usage: bash scripts/bench-server.sh [BUILD_DIR] [sotto-bench-server options]
#   defaults: -n 1000 -m 50000 -r 5000 -b 160 -d full -t 30
set -euo pipefail
BUILD=${1:-build}
shift || true
BIN="$BUILD/bench/server/sotto-bench-server"
if [ ! -x "$BIN" ]; then
  echo "bench-server: $BIN not built (needs sottod and libmosquitto-dev)" >&2
  exit 1
fi
exec timeout 600 "$BIN" "$@"
