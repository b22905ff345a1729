#!/usr/bin/env bash
# Installs every Debian package that building, testing, benchmarking and the
# demo need -- only those that are missing. Safe to run repeatedly.
set -euo pipefail

PKGS=(
  # toolchain
  build-essential cmake pkg-config clang
  clang-format  # scripts/check-format.sh (tests labelled style)
  libclang-rt-14-dev libfuzzer-14-dev
  # libsotto
  libsodium-dev libssl-dev
  # storage
  libsqlite3-dev sqlite3
  # server and client
  libwebsockets-dev libprotobuf-c-dev protobuf-c-compiler libqrencode-dev
  # tests
  libcmocka-dev libjansson-dev
  valgrind  # test_mlkem_ct_valgrind (ML-KEM constant-time check)
  # interop peer and benchmark reference
  libsignal-protocol-c-dev mosquitto libmosquitto-dev
  # scripts
  python3 procps psmisc openssl
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
