#!/bin/sh
# Installs this build into a scratch prefix, then builds the orders example out of tree
# as a user project would (find_package(shoal) + shoal_generate()) and runs it.
#   install_orders.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
work=$(mktemp -d)
SHOAL_ROOT=$(mktemp -d /dev/shm/shoal-test-install-XXXXXX)
export SHOAL_ROOT
trap 'rm -rf "$work" "$SHOAL_ROOT"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/examples/orders" -B "$work/orders" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_C_FLAGS="${CFLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${LDFLAGS:-}" >/dev/null
cmake --build "$work/orders" >/dev/null
grep -q "$work/prefix/bin/protoc-gen-shoal" \
    "$work/orders/CMakeFiles/orders_schema_shoal_gen_1.dir/build.make" ||
    { echo "the installed plugin was not used" >&2; exit 1; }
sh "$src/examples/orders/run.sh" "$work/orders/orders_consumer" \
    "$work/orders/orders_producer" 1000
