#!/bin/sh
# corpus.sh — real-world schemas through the compiler, as a new user would run it.
#
# Each set is a group of .proto files compiled in one run: protobuf's well-known types,
# descriptor.proto and plugin.proto (from the system's protobuf headers), gRPC's service
# definitions (Debian's grpc-proto), and the files of proto/corpus/ that reproduce what
# other projects' schemas do (opentelemetry's traces and `rpc Export`, googleapis'
# status, identifiers that are keywords somewhere). For every set: C and Python are
# generated; every .shoal.c compiles as C11 and every .shoal.h as C++17 with
# -Wall -Wextra -Werror -pedantic; the objects link into a program; every Python
# module imports and validates a default instance of each message. The files are read
# from the system at test time: a set whose files are not installed is skipped with a
# message.
#
# usage: corpus.sh PROTOC PLUGIN CC CXX PYTHON LIBSHOAL SOURCE_DIR WORK_DIR
# (CORPUS_LDFLAGS: extra link flags, e.g. for sanitizers)
set -eu
PROTOC=$1 PLUGIN=$2 CC=$3 CXX=$4 PYTHON=$5 LIBSHOAL=$6 SRC=$7 WORK=$8
export SHOAL_LIBRARY="$LIBSHOAL"
SYS=/usr/include
GRPC=/usr/share/grpc-proto
CORPUS=$SRC/tests/codegen/proto/corpus
WKT="google/protobuf/any.proto google/protobuf/duration.proto
     google/protobuf/timestamp.proto google/protobuf/wrappers.proto
     google/protobuf/struct.proto"
STRICT="-Wall -Wextra -Werror -pedantic"
rm -rf "$WORK"
mkdir -p "$WORK"
failed=0

fail() {
    echo "FAIL [$1]: $2" >&2
    failed=1
}

# check_set NAME GNU(0|1) FILE... : one set, every step.
check_set() {
    name=$1 gnu=$2 before=$failed
    failed=0
    shift 2
    for f in "$@"; do
        if [ ! -f "$SYS/$f" ] && [ ! -f "$GRPC/$f" ] && [ ! -f "$CORPUS/$f" ]; then
            echo "skip [$name]: $f is not installed"
            return 0
        fi
    done
    o=$WORK/$name
    mkdir -p "$o/c" "$o/py"
    inc="-I$SYS -I$SRC/schemas -I$CORPUS"
    [ -d "$GRPC" ] && inc="$inc -I$GRPC"
    # shellcheck disable=SC2086
    if ! "$PROTOC" --plugin=protoc-gen-shoal="$PLUGIN" --shoal_out="$o/c" $inc "$@" \
        2>"$o/c.err"; then
        fail "$name" "C generation: $(cat "$o/c.err")"
        return 0
    fi
    # shellcheck disable=SC2086
    if ! "$PROTOC" --plugin=protoc-gen-shoal="$PLUGIN" --shoal_out="lang=python:$o/py" \
        $inc "$@" 2>"$o/py.err"; then
        fail "$name" "Python generation: $(cat "$o/py.err")"
    fi
    objs=""
    for c in $(find "$o/c" -name '*.shoal.c' | sort); do
        # shellcheck disable=SC2086
        $CC -std=c11 $STRICT -c -I"$o/c" -I"$SRC/runtime/include" "$c" -o "$c.o" \
            2>"$c.err" || fail "$name" "C11: $(cat "$c.err")"
        if [ "$gnu" = 1 ]; then # gcc's GNU modes predefine unix, linux, i386
            # shellcheck disable=SC2086
            $CC -std=gnu11 $STRICT -fsyntax-only -I"$o/c" -I"$SRC/runtime/include" \
                "$c" 2>"$c.err" || fail "$name" "GNU C11: $(cat "$c.err")"
        fi
        objs="$objs $c.o"
    done
    for h in $(find "$o/c" -name '*.shoal.h' | sort); do
        printf '#include "%s"\n' "$h"
    done >"$o/headers.cc"
    # shellcheck disable=SC2086
    $CXX -std=c++17 $STRICT -fsyntax-only -I"$o/c" -I"$SRC/runtime/include" \
        "$o/headers.cc" 2>"$o/cxx.err" || fail "$name" "C++17: $(cat "$o/cxx.err")"
    printf 'int main(void)\n{\n    return 0;\n}\n' >"$o/main.c"
    # shellcheck disable=SC2086
    $CC -o "$o/prog" "$o/main.c" $objs "$LIBSHOAL" -lprotobuf-c ${CORPUS_LDFLAGS:-} \
        2>"$o/link.err" || fail "$name" "link: $(cat "$o/link.err")"
    (cd "$o/py" && PYTHONPATH="$SRC/bindings/python:$o/py" "$PYTHON" - "$@" <<'EOF'
import importlib, sys
from shoal import _gen
for proto in sys.argv[1:]:
    mod = importlib.import_module(proto[:-len(".proto")].replace("/", ".") + "_shoal")
    n = 0
    for v in vars(mod).values():
        if isinstance(v, type) and issubclass(v, _gen.Message) and v is not _gen.Message:
            v().validate()
            n += 1
    print("imported", mod.__name__, "with", n, "fixed messages")
EOF
    ) >"$o/py.out" 2>&1 || fail "$name" "Python import: $(cat "$o/py.out")"
    [ $failed = 0 ] && echo "ok [$name]: $# files, $(echo $objs | wc -w) C sources"
    [ $before = 0 ] || failed=1
}

# The sets, in two halves run side by side.
half1() {
    # shellcheck disable=SC2086
    check_set wkt 0 google/protobuf/any.proto google/protobuf/api.proto \
        google/protobuf/duration.proto google/protobuf/empty.proto \
        google/protobuf/field_mask.proto google/protobuf/source_context.proto \
        google/protobuf/struct.proto google/protobuf/timestamp.proto \
        google/protobuf/type.proto google/protobuf/wrappers.proto
    check_set grpc_health 0 grpc/health/v1/health.proto
    check_set grpc_reflection_alpha 0 grpc/reflection/v1alpha/reflection.proto
    # shellcheck disable=SC2086
    check_set grpc_binlog 0 grpc/binlog/v1/binarylog.proto $WKT
    check_set grpc_alts 0 grpc/gcp/altscontext.proto grpc/gcp/handshaker.proto \
        grpc/gcp/transport_security_common.proto
    # shellcheck disable=SC2086
    check_set grpc_lookup 0 grpc/lookup/v1/rls.proto grpc/lookup/v1/rls_config.proto $WKT
    check_set otel 0 otel/common.proto otel/trace.proto otel/trace_service.proto
    check_set names 1 names/identifiers.proto names/encoded.proto
    return $failed
}

half2() {
    check_set descriptor 0 google/protobuf/descriptor.proto \
        google/protobuf/compiler/plugin.proto
    check_set grpc_reflection 0 grpc/reflection/v1/reflection.proto
    # shellcheck disable=SC2086
    check_set grpc_channelz 0 grpc/channelz/v1/channelz.proto $WKT
    check_set grpc_testing 0 grpc/testing/messages.proto grpc/testing/empty.proto \
        grpc/testing/test.proto grpc/testing/payloads.proto grpc/testing/stats.proto \
        grpc/testing/control.proto grpc/testing/benchmark_service.proto \
        grpc/testing/worker_service.proto grpc/testing/report_qps_scenario_service.proto \
        grpc/core/stats.proto google/protobuf/timestamp.proto
    # shellcheck disable=SC2086
    check_set grpc_lb 0 grpc/lb/v1/load_balancer.proto $WKT
    check_set grpc_helloworld 0 grpc/examples/helloworld.proto
    check_set rpc_status 0 rpc/status.proto google/protobuf/any.proto \
        google/protobuf/duration.proto
    return $failed
}

half1 >"$WORK/half1.log" 2>&1 &
pid=$!
status=0
half2 >"$WORK/half2.log" 2>&1 || status=1
wait $pid || status=1
cat "$WORK/half1.log" "$WORK/half2.log"
[ $status = 0 ] && rm -rf "$WORK"
exit $status
