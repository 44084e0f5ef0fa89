#!/bin/sh
# The main job: install, build, train the LeNet-style network on Fashion-MNIST
# with its last layers (4..7: connected, dropout, connected, softmax) inside the
# TEE (the simulated one, started on demand), report its test accuracy, and
# predict one test image. The numbers are bit for bit those of a run without the
# TEE (drop the -pp_start/-pp_end flags everywhere to compare). The saved
# weights keep layers 4..7 sealed in backup/*.weights.tz.
set -e
cd "$(dirname "$0")"
sh tools/install-deps.sh
make -j2
DATA=cfg/fashion-mnist.data
CFG=cfg/fashion_lenet.cfg
TEE="-pp_start 4 -pp_end 7"
bin/darknetp classifier train $TEE $DATA $CFG
echo "== accuracy on the 10,000 test images (only the top-1 label leaves the TEE)"
bin/darknetp classifier valid $TEE $DATA $CFG backup/fashion_lenet_final.weights 2>/dev/null | tail -n 1
mkdir -p data
bin/idx2png /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz 0 data/fashion_t10k_0.png
echo "== prediction for data/fashion_t10k_0.png (an ankle boot), softmax inside the TEE"
bin/darknetp classifier predict $TEE $DATA $CFG backup/fashion_lenet_final.weights data/fashion_t10k_0.png 2>/dev/null
