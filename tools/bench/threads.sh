#!/bin/sh
# threads.sh - training images/s of darknetp with 1 and with 2 threads (or -threads N given
# as THREADS), side by side: LeNet (cfg/fashion_lenet.cfg, batch 100) and the VGG-7-like
# cfg/fashion_vgg7.cfg (batch 50) on Fashion-MNIST. Runs alternate (1, N, 1, N, ...) ROUNDS
# times so that the machine's other load falls on both alike; each figure is the median of
# the per-iteration rates of the -log CSV (the first iteration left out), the ratio is of
# the medians. A control line first: how much faster THREADS busy loops get through a fixed
# amount of work than one, side by side in the same way: on a shared machine (or a CPU quota)
# that is the most any threading can give. Usage: tools/bench/threads.sh [ROUNDS] [ITERATIONS]
set -eu
ROUNDS=${1:-5}
ITERS=${2:-12}
THREADS=${THREADS:-2}
BIN=${DZ_DARKNETP:-bin/darknetp}
root=$(pwd)
work=$(mktemp -d /tmp/dz-threads-XXXXXX)
trap 'rm -rf "$work"' EXIT
sed -e "s|names=cfg/|names=$root/cfg/|" -e "s|backup=backup/|backup=$work/backup/|" \
  cfg/fashion-mnist.data > "$work/f.data"

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

now() { date +%s.%N; }
spin() { awk 'BEGIN { for (i = 0; i < 4e7; i++) s += i }'; }
: > "$work/spin.1"; : > "$work/spin.N"
r=0
while [ "$r" -lt "$ROUNDS" ]; do
  t0=$(now); spin; t1=$(now)
  echo "$t0 $t1" | awk '{print 1 / ($2 - $1)}' >> "$work/spin.1"
  t0=$(now); i=0
  while [ "$i" -lt "$THREADS" ]; do spin & i=$((i + 1)); done
  wait; t1=$(now)
  echo "$t0 $t1 $THREADS" | awk '{print $3 / ($2 - $1)}' >> "$work/spin.N"
  r=$((r + 1))
done
printf '%-14s %s busy loops get through %.2fx the work of one in the same time\n' control \
  "$THREADS" "$(echo "$(median < "$work/spin.N") $(median < "$work/spin.1")" | awk '{print $1 / $2}')"

for net in fashion_lenet fashion_vgg7; do
  sed "s/^max_batches=.*/max_batches=$ITERS/" "cfg/$net.cfg" > "$work/$net.cfg"
  : > "$work/$net.1"; : > "$work/$net.$THREADS"
  r=0
  while [ "$r" -lt "$ROUNDS" ]; do
    for t in 1 "$THREADS"; do
      "$BIN" classifier train -threads "$t" -save_every 0 -log "$work/log.csv" \
        "$work/f.data" "$work/$net.cfg" > /dev/null 2>&1
      # Column 6: images per second of one iteration; row 2 is the first iteration.
      tail -n +3 "$work/log.csv" | cut -d, -f6 >> "$work/$net.$t"
    done
    r=$((r + 1))
  done
  one=$(median < "$work/$net.1")
  many=$(median < "$work/$net.$THREADS")
  lo1=$(sort -g "$work/$net.1" | head -1); hi1=$(sort -g "$work/$net.1" | tail -1)
  loN=$(sort -g "$work/$net.$THREADS" | head -1); hiN=$(sort -g "$work/$net.$THREADS" | tail -1)
  printf '%-14s 1 thread %7.1f img/s (%s..%s)  %s threads %7.1f img/s (%s..%s)  ratio %.2f\n' \
    "$net" "$one" "$lo1" "$hi1" "$THREADS" "$many" "$loN" "$hiN" \
    "$(echo "$many $one" | awk '{print $1 / $2}')"
done
