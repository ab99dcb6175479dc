#!/bin/sh
# Checks the dynamic symbol table of libshoal.so: it exports exactly the functions the
# public headers declare (SHOAL_API), each under the version node SHOAL_0, and nothing
# else (no internal shoal__* function, nothing linked in).
# usage: check_exports.sh LIBSHOAL_SO INCLUDE_DIR
set -eu
lib=$1
inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^SHOAL_0$' | sort >"$tmp/exported"
# Declarations may wrap: join each header's lines (without # directives), then take
# the name before the first "(".
for h in "$inc"/shoal.h "$inc"/shoal/*.h; do grep -v '^#' "$h" | tr '\n' ' '; echo; done |
    grep -o 'SHOAL_API[^;{(]*(' | sed 's/($//; s/.*[ *]\([a-z_0-9]*\)$/\1/' |
    sort -u >"$tmp/declared"
status=0
if grep -v '@@SHOAL_0$' "$tmp/exported" >/dev/null; then
    echo "symbols without the SHOAL_0 version:"; grep -v '@@SHOAL_0$' "$tmp/exported"
    status=1
fi
sed 's/@@SHOAL_0$//' "$tmp/exported" >"$tmp/names"
if ! diff -u "$tmp/declared" "$tmp/names"; then
    echo "exported symbols differ from the SHOAL_API declarations (- declared, + exported)"
    status=1
fi
echo "$(wc -l <"$tmp/names") symbols exported"
exit $status
