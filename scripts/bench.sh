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
