#!/bin/sh
# Cross-compiles what goes into the DarkneTZ TA (the engine in dnn/ and ta/) for
# arm64, as OP-TEE's dev kit would (with its -mstrict-align, under which -Wcast-align
# refuses a cast that raises a pointer's alignment), and fails on any symbol it needs that an
# OP-TEE TA does not have: the GP Internal Core API, a few libc string and
# allocation functions (OP-TEE's libutils has C11's aligned_alloc), and the trace hook.
# No libm, no stdio files, no threads.
set -eu
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
NM=${CROSS_NM:-aarch64-linux-gnu-nm}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in dnn/*.c ta/*.c; do
    obj="$out/$(echo "$f" | tr / _).o"
    "$CC" -std=c11 -O2 -Wall -Wextra -Wcast-align -mstrict-align -Werror -ffp-contract=off -fno-math-errno \
        -I. -Iinclude -Ita/include -c "$f" -o "$obj"
done
# Symbols the objects define among themselves are fine; list what is left.
"$NM" -u "$out"/*.o | awk '{print $2}' | sort -u > "$out/undef"
"$NM" --defined-only "$out"/*.o | awk 'NF == 3 {print $3}' | sort -u > "$out/def"
comm -23 "$out/undef" "$out/def" > "$out/needed"
allowed='^(TEE_[A-Za-z0-9_]+|memcpy|memmove|memset|memcmp|strcmp|strncmp|strlen|snprintf|vsnprintf|malloc|calloc|realloc|free|aligned_alloc|tsim_trace_printf)$'
bad=$(grep -Ev "$allowed" "$out/needed" || true)
if [ -n "$bad" ]; then
    echo "check-ta-symbols: the TA needs symbols an OP-TEE TA does not have:" $bad
    exit 1
fi
echo "check-ta-symbols: arm64 TA objects need only:" $(cat "$out/needed")
