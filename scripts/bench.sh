#!/usr/bin/env bash
# Runs the benchmarks of a build directory, one program after the other.
# `make bench` calls: bash scripts/bench.sh BUILD_DIR
# Benchmarks are not tests: none of them is registered with ctest.
set -euo pipefail
BUILD=${1:-build}

# Library: libsotto against libsignal-protocol-c (its own process), same
# scenarios and sizes; prints `bench <scenario> sotto_ops_per_s=...` lines
# and a table.
"$BUILD/bench/sotto-bench-lib"

# Sealed sender v1: libsotto against Signal's libsignal-client (npm package
# @signalapp/libsignal-client, prebuilt native module, run by Node.js). The
# package is installed here, from bench/peers/libsignal-client's
# package-lock, and nowhere else (never by make test or CI). Without Node.js
# or the package, ours alone is printed. Prints `bench sealed-<op>-<size>`
# lines and a table.
if [ -x "$BUILD/bench/sotto-bench-sealed" ]; then
  echo
  PEER_DIR="$(cd "$(dirname "$0")/.." && pwd)/bench/peers/libsignal-client"
  if ! command -v npm >/dev/null 2>&1; then
    echo "bench: installing nodejs and npm (Debian) for the libsignal-client peer"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        nodejs npm >/dev/null; } || echo "bench: nodejs/npm not installed; libsotto only"
  fi
  if command -v npm >/dev/null 2>&1 &&
     { [ ! -f "$PEER_DIR/node_modules/.package-lock.json" ] ||
       [ "$PEER_DIR/package-lock.json" -nt "$PEER_DIR/node_modules/.package-lock.json" ]; }; then
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
      echo "bench: npm ci failed in $PEER_DIR; libsotto only"
  fi
  "$BUILD/bench/sotto-bench-sealed"
fi

# ECVRF (RFC 9381, key transparency): prove/verify beside the libsodium
# primitives; prints `bench vrf_<op> us_per_op=...` lines.
if [ -x "$BUILD/bench/sotto-bench-vrf" ]; then
  echo
  "$BUILD/bench/sotto-bench-vrf"
fi

# Key transparency: prefix-tree proof size and verify time at 10^4..10^6
# entries, log proof verify time; prints `bench kt_<what> ...` lines.
if [ -x "$BUILD/bench/sotto-bench-kt" ]; then
  echo
  "$BUILD/bench/sotto-bench-kt"
fi

# Padding (issue 12): content buckets and attachment blob sizes on a seeded
# synthetic mix: bytes before/after, overhead, distinct sizes; prints
# `bench padding_<what> ...` lines and two tables (well under a second).
if [ -x "$BUILD/bench/sotto-bench-padding" ]; then
  echo
  "$BUILD/bench/sotto-bench-padding"
fi

# Key-transparency directory of 10^4, 10^5 and 10^6 accounts: build, search
# proof size and client verify, server updates with a durable commit
# (sottod's store), auditor catch-up, beside the primitives; prints
# `bench kt_dir_<what> ...` lines and one table (about a minute;
# docs/bench.md).
if [ -x "$BUILD/bench/sotto-bench-kt-dir" ]; then
  echo
  "$BUILD/bench/sotto-bench-kt-dir"
fi

# Client: send round trip and events per second through `sotto daemon`
# next to one-shot CLI processes (issue 10; prints `bench daemon_<what>`
# lines and a table; about a minute).
if [ -x "$BUILD/client/sotto" ] && [ -x "$BUILD/server/sottod" ]; then
  echo
  bash "$(dirname "$0")/../bench/bench_daemon.sh" "$BUILD"
fi

# Server: sottod under N authenticated connections, with a mosquitto QoS 1
# reference row in the same run.
if [ -x "$BUILD/bench/server/sotto-bench-server" ]; then
  echo
  bash "$(dirname "$0")/bench-server.sh" "$BUILD"
fi
