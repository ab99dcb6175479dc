#!/bin/sh
# Runs the fuzz target for a while on the checked-in corpus, keeping what it finds
# (new inputs, crash artifacts) in a work directory of the build tree.
# usage: run.sh FUZZER CORPUS_DIR SECONDS WORK_DIR [libFuzzer options...]
set -eu
fuzzer=$1
corpus=$2
secs=$3
work=$4
shift 4
rm -rf "$work"
mkdir -p "$work/new" "$work/artifacts"
exec "$fuzzer" -max_total_time="$secs" -timeout=30 -max_len=16384 -seed=1 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/new" "$corpus"
