#!/bin/sh
# col_cache.sh - training CPU time per step of darknetp's engine with every image lowered
# twice per step (BENCH_COL_CACHE_BYTES=0: im2col in the forward and again in the backward
# pass, darknet's way) and with the convolutions keeping their forward pass's columns for the
# backward pass (dnn_network_set_column_cache, the default budget), side by side in one run:
# LeNet (the fixture's mnist_lenet.cfg, batch 100) and VGG-7 (cfg/vgg-7_cifar10.cfg, batch 50),
# one thread, synthetic input (tools/bench/bench_dnn train). Runs alternate, and so does the
# side that starts, ROUNDS times; each line gives both medians as images per CPU second with
# their min-max, and the median [min-max] of the per-round speed-ups.
# Usage: tools/bench/col_cache.sh [ROUNDS]; BENCH_DRIVER names the driver binary.
set -eu
ROUNDS=${1:-5}
BIN=${BENCH_DRIVER:-build/tools/bench/bench_dnn}
work=$(mktemp -d /tmp/dz-colcache-XXXXXX)
trap 'rm -rf "$work"' EXIT

# Prints "median min max" of the numbers on stdin.
stats() { sort -g | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2;
  print m, a[1], a[NR]}'; }

# One training measurement with a cache budget ("" for the default): CPU seconds per step.
step() {
  if [ -n "$1" ]; then
    BENCH_COL_CACHE_BYTES=$1 "$BIN" train "$2" "$3" "$4" "$5" | awk '{print $4}'
  else
    "$BIN" train "$2" "$3" "$4" "$5" | awk '{print $4}'
  fi
}

for case in "LeNet tests/fixtures/darknet-mnist-lenet/mnist_lenet.cfg 100 10 2" \
            "VGG-7 cfg/vgg-7_cifar10.cfg 50 1 1"; do
  set -- $case
  : > "$work/twice"; : > "$work/kept"; : > "$work/ratio"
  r=0
  while [ "$r" -lt "$ROUNDS" ]; do
    if [ $((r % 2)) -eq 0 ]; then
      a=$(step 0 "$2" "$3" "$4" "$5"); b=$(step "" "$2" "$3" "$4" "$5")
    else
      b=$(step "" "$2" "$3" "$4" "$5"); a=$(step 0 "$2" "$3" "$4" "$5")
    fi
    echo "$3 $a" | awk '{print $1 / $2}' >> "$work/twice"
    echo "$3 $b" | awk '{print $1 / $2}' >> "$work/kept"
    echo "$a $b" | awk '{print $1 / $2}' >> "$work/ratio"
    r=$((r + 1))
  done
  printf '%-6s batch %-4s lowered twice: %s images/s  columns kept: %s images/s  speed-up %s\n' \
    "$1" "$3" \
    "$(stats < "$work/twice" | awk '{printf "%.1f [%.1f-%.1f]", $1, $2, $3}')" \
    "$(stats < "$work/kept" | awk '{printf "%.1f [%.1f-%.1f]", $1, $2, $3}')" \
    "$(stats < "$work/ratio" | awk '{printf "%.2f [%.2f-%.2f]", $1, $2, $3}')"
done
