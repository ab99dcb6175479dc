#!/usr/bin/env bash
# Installs what is needed, builds shoal and runs the demo programs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
for demo in build/examples/c/seed_*; do
    echo "== ${demo##*/} =="
    "$demo"
done
