#!/usr/bin/env bash
# Installs gRPC C++ for the side-by-side service benchmark (bench/peers/grpc_peer.cc)
# only; the build and the tests never need it. Non-interactive and idempotent.
set -euo pipefail
exec "$(dirname "$0")/setup-debian.sh" --only libgrpc++-dev protobuf-compiler-grpc
