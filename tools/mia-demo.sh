#!/bin/sh
# Reproduces README's "What the TEE protects against, measured" table: trains
# cfg/fashion_mia.cfg on the first 1,000 Fashion-MNIST training images (the
# members) until it has memorised them, then attacks it with `classifier mia`
# against 1,000 test images (the non-members): once with no TEE (the scores
# leave), once with the last layers and the softmax in the TEE under top1, once
# more with 15 augmented queries per image, once probing a training session (-grad), and
# once with the middle layers in the TEE.
# Needs bin/darknetp (make) and Debian's dataset-fashion-mnist package.
set -e
cd "$(dirname "$0")/.."
SRC=/usr/share/datasets/fashion-mnist
N=${N:-1000}
OUT=data/mia
mkdir -p $OUT
# An IDX subset: the header with the count replaced, then the first N items.
be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))"; \
         printf "\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
{ be32 2051; be32 $N; be32 28; be32 28; zcat $SRC/train-images-idx3-ubyte.gz | tail -c +17 | head -c $((N * 784)); } > $OUT/members-images.idx
{ be32 2049; be32 $N; zcat $SRC/train-labels-idx1-ubyte.gz | tail -c +9 | head -c $N; } > $OUT/members-labels.idx
cat > $OUT/fashion-mia.data <<DATA
# Members: the first $N training images (what the model is trained on); non-members: the test set.
classes=10
train=$OUT/members-images.idx
train_labels=$OUT/members-labels.idx
valid=$SRC/t10k-images-idx3-ubyte.gz
valid_labels=$SRC/t10k-labels-idx1-ubyte.gz
names=cfg/fashion-mnist.names
backup=$OUT/backup
DATA
DATA=$OUT/fashion-mia.data
CFG=cfg/fashion_mia.cfg
W=$OUT/backup/fashion_mia_final.weights
[ -f $W ] || bin/darknetp classifier train -save_every 0 -log $OUT/train.csv $DATA $CFG > $OUT/train.log 2>&1
MIA="bin/darknetp classifier mia $DATA $CFG $W -n $N -seed 1"
echo "== no TEE: the scores leave"
$MIA -csv $OUT/none.csv -plot $OUT/none.svg 2>/dev/null
echo "== layers 4..6 (connected, connected, softmax) in the TEE, top1"
$MIA -pp_start 4 -pp_end 6 -csv $OUT/top1.csv -plot $OUT/top1.svg 2>/dev/null
echo "== the same with 15 augmented queries per image"
$MIA -pp_start 4 -pp_end 6 -queries 15 -csv $OUT/top1q.csv -plot $OUT/top1q.svg 2>/dev/null
echo "== layers 4..6 in the TEE, top1, and a training session's deltas at layer 4's input"
$MIA -pp_start 4 -pp_end 6 -grad 2>/dev/null
echo "== layers 2..3 (the middle) in the TEE: the scores still leave"
$MIA -pp_start 2 -pp_end 3 2>/dev/null
