#!/usr/bin/env bash
# Installs every Debian package shoal needs to build, test and benchmark.
# Non-interactive and idempotent: when everything is present it only checks and exits.
# `setup-debian.sh --only PKG...` installs just those (scripts/setup-bench-grpc.sh).
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang-format
    libcmocka-dev
    protobuf-compiler libprotobuf-dev libprotoc-dev
    libprotobuf-c-dev protobuf-c-compiler
    # gRPC's .proto files: real-world schemas for the compiler's corpus test
    grpc-proto
    libnng-dev liburing-dev
    # the tls+tcp:// tests make a throwaway CA and certificates with it
    openssl
    # the Manager broker's durable store (broker/store.c)
    liblmdb-dev
    # the fuzz target (tests/fuzz): clang with libFuzzer and the sanitizers
    clang libclang-rt-14-dev
    python3 python3-pip python3-setuptools python3-wheel
    # peers measured side by side in bench/
    libzmq3-dev
    # the Node.js binding (bindings/node): node, and the headers its addon builds against
    nodejs
)
if [ "${1:-}" = --only ]; then
    shift
    packages=("$@")
else
    # Debian ships the Node headers (node_api.h) in libnode-dev; NodeSource's nodejs has
    # them.
    [ -e /usr/include/node/node_api.h ] || packages+=(libnode-dev)
    # The Rust binding (bindings/rust) needs cargo and rustc >= 1.77 (rustup.rs); without
    # them CMake skips its tests with a warning. Debian 12's own cargo is too old for it.
    command -v cargo >/dev/null ||
        echo "setup: cargo not found: the Rust binding will not be tested (install Rust >= 1.77)" >&2
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
