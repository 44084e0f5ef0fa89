#!/bin/sh
# The main job: install, build, train the LeNet-style network on Fashion-MNIST,
# report its test accuracy, and predict one test image.
set -e
cd "$(dirname "$0")"
sh tools/install-deps.sh
make -j2
DATA=cfg/fashion-mnist.data
CFG=cfg/fashion_lenet.cfg
bin/darknetp classifier train $DATA $CFG
echo "== accuracy on the 10,000 test images"
bin/darknetp classifier valid $DATA $CFG backup/fashion_lenet_final.weights 2>/dev/null | tail -n 1
mkdir -p data
bin/idx2png /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz 0 data/fashion_t10k_0.png
echo "== prediction for data/fashion_t10k_0.png (an ankle boot)"
bin/darknetp classifier predict -t 3 $DATA $CFG backup/fashion_lenet_final.weights data/fashion_t10k_0.png
