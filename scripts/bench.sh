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
