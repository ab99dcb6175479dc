#!/usr/bin/env bash
# Installs what is needed, builds shoal and runs the demo: the seed programs in C, then
# the orders example across languages — a schema (examples/orders/orders.proto), code
# generated from it for C and Python, and a C producer feeding a Python consumer
# through a typed queue plus a shared Value, two programs started separately.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null

export SHOAL_DOMAIN=demo
for demo in build/examples/c/seed_*; do
    echo "== ${demo##*/} (C)"
    "$demo"
done
echo "== orders: C producer -> Python consumer"
SHOAL_LIBRARY="$PWD/build/runtime/libshoal.so" \
    sh examples/orders/run_python.sh build/cli/shoal build/examples/orders/orders_producer 10000
echo "== what is left in the domain (anonymous objects are gone):"
build/cli/shoal ls
