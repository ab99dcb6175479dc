#!/usr/bin/env bash
# Installs gRPC C++ for the side-by-side service benchmark (bench/peers/grpc_peer.cc)
# only; the build and the tests never need it. Non-interactive and idempotent.
set -euo pipefail

packages=(libgrpc++-dev protobuf-compiler-grpc)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup-bench-grpc: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
