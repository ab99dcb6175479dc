#!/usr/bin/env bash
# usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR
set -euo pipefail
build=$1
consumer=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export SHOAL_ROOT="$scratch/shm"
mkdir -p "$SHOAL_ROOT"

cmake --install "$build" --prefix "$scratch/prefix" >/dev/null

# 1. CMake package.
cmake -S "$consumer" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/cmake-build" >/dev/null
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64:${LD_LIBRARY_PATH:-}" \
    "$scratch/cmake-build/consumer"

# 2. pkg-config.
pc_dir=$(dirname "$(find "$scratch/prefix" -name shoal.pc | head -1)")
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs shoal)
# shellcheck disable=SC2086
cc ${CFLAGS:-} -o "$scratch/pc-consumer" "$consumer/main.c" $flags ${LDFLAGS:-}
LD_LIBRARY_PATH="$scratch/prefix/lib:$scratch/prefix/lib64:${LD_LIBRARY_PATH:-}" \
    "$scratch/pc-consumer"

# 3. pkg-config --static against the static library: Libs.private must name every
#    library it needs.
libdir=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --variable=libdir shoal)
static_flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --static --cflags --libs shoal)
# shellcheck disable=SC2086
cc ${CFLAGS:-} -o "$scratch/static-consumer" "$consumer/main.c" \
    ${static_flags/-lshoal/$libdir/libshoal.a} ${LDFLAGS:-}
"$scratch/static-consumer"

# 4. The headers are where the documentation says.
test -f "$scratch/prefix/include/shoal.h"
test -f "$scratch/prefix/include/shoal/value.h"
echo "install test passed"
