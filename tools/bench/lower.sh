#!/bin/sh
# lower.sh - training CPU time per step of darknetp's engine with every convolution one image
# at a time (BENCH_LOWER_IMAGES=1, darknet's way) and with small convolutions lowering
# several images per product (dnn_network_set_lowering, the default), side by side in one
# run: LeNet (the fixture's mnist_lenet.cfg, batch 100) and VGG-7 (cfg/vgg-7_cifar10.cfg,
# batch 50), one thread, synthetic input (tools/bench/bench_dnn train). Runs alternate, and
# so does the side that starts, ROUNDS times; each line gives both medians as images per CPU
# second with their min-max, and the median [min-max] of the per-round speed-ups.
# Usage: tools/bench/lower.sh [ROUNDS]; BENCH_DRIVER names the driver binary.
set -eu
ROUNDS=${1:-5}
BIN=${BENCH_DRIVER:-build/tools/bench/bench_dnn}
work=$(mktemp -d /tmp/dz-lower-XXXXXX)
trap 'rm -rf "$work"' EXIT

# Prints "median min max" of the numbers on stdin.
stats() { sort -g | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2;
  print m, a[1], a[NR]}'; }

# One training measurement: CPU seconds per step (bench_dnn's fourth field).
step() { BENCH_LOWER_IMAGES=$1 "$BIN" train "$2" "$3" "$4" "$5" | awk '{print $4}'; }

for case in "LeNet tests/fixtures/darknet-mnist-lenet/mnist_lenet.cfg 100 10 2" \
            "VGG-7 cfg/vgg-7_cifar10.cfg 50 1 1"; do
  set -- $case
  : > "$work/one"; : > "$work/low"; : > "$work/ratio"
  r=0
  while [ "$r" -lt "$ROUNDS" ]; do
    if [ $((r % 2)) -eq 0 ]; then
      a=$(step 1 "$2" "$3" "$4" "$5"); b=$(step "$3" "$2" "$3" "$4" "$5")
    else
      b=$(step "$3" "$2" "$3" "$4" "$5"); a=$(step 1 "$2" "$3" "$4" "$5")
    fi
    echo "$3 $a" | awk '{print $1 / $2}' >> "$work/one"
    echo "$3 $b" | awk '{print $1 / $2}' >> "$work/low"
    echo "$a $b" | awk '{print $1 / $2}' >> "$work/ratio"
    r=$((r + 1))
  done
  printf '%-6s batch %-4s one image: %s images/s  lowered: %s images/s  speed-up %s\n' "$1" "$3" \
    "$(stats < "$work/one" | awk '{printf "%.1f [%.1f-%.1f]", $1, $2, $3}')" \
    "$(stats < "$work/low" | awk '{printf "%.1f [%.1f-%.1f]", $1, $2, $3}')" \
    "$(stats < "$work/ratio" | awk '{printf "%.2f [%.2f-%.2f]", $1, $2, $3}')"
done
