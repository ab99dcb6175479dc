#!/bin/sh
# The orders example across languages: the C producer and the Python consumer, two
# separate programs sharing only the typed queue and Value they open by name. The
# Python types are generated first with `shoal gen --lang python`.
#   run_python.sh PATH/TO/shoal PATH/TO/orders_producer [COUNT]
# Needs SHOAL_LIBRARY (or an installed libshoal) for the Python side.
set -e
here=$(cd "$(dirname "$0")" && pwd)
shoal=$1
producer=$2
count=${3:-10000}
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
"$shoal" gen --lang python -I "$here" -o "$gen" "$here/orders.proto"
PYTHONPATH="$here/../../bindings/python:$gen${PYTHONPATH:+:$PYTHONPATH}" \
    "${PYTHON:-python3}" "$here/consumer.py" "$count" &
cpid=$!
"$producer" "$count" || { kill "$cpid" 2>/dev/null; exit 1; }
wait "$cpid"
