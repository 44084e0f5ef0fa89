#!/bin/sh
# The commands `make check-optee` runs on real OP-TEE (in the QEMU guest, busybox sh) and on
# the simulated TEE (on the build machine), in a copy of the same folder, so that every output
# can be compared byte for byte.
#
#   scenario.sh DARKNETP HOSTILE OUT
#
# Run in the scenario folder that check-optee.sh prepares: the fixture's LeNet
# (mnist.dataset, mnist_lenet.cfg/.weights, images/), cfg/fashion_lenet.cfg (the demo's
# network), train.cfg (the LeNet at batch 4 for 3 iterations), train-last.data and
# train-mid.data (the twelve fixture images as a training list; backups in backup-last/ and
# backup-mid/). Each step NAME writes OUT/NAME.out (stdout), OUT/NAME.err (stderr) and
# OUT/NAME.rc (exit status); OUT/weights.sha256 and OUT/sealed.sizes describe the saved files.
#
# AlexNet (issue 11), when alexnet/ exists (check-optee's DZ_OPTEE_ALEXNET): it holds
# alexnet.cfg (the classifier head of pjreddie's alexnet.cfg; check-optee.sh says which form),
# a data file naming 1000 classes, images.txt and partition (the head's -pp_start/-pp_end in
# that cfg); check-optee.sh puts the weights, generated from a seed, in ./alexnet.weights. The
# head runs in the TA built again with another CFG_DZ_TA_DATA_SIZE: the caller's $DZ_TA12_ON
# (a shell command) switches to that TA and $DZ_TA12_OFF back. OUT/alexnet.times gives each
# AlexNet step's wall time (not compared). alexnet/probe, when there (check-optee's
# DZ_OPTEE_AX_PROBE), lists streaming working buffers (-tee_chunk) to try for 30 s each first:
# OUT/alexnet.probe says how each ended (not compared either).
set -u
D=$1
H=$2
OUT=$3
mkdir -p "$OUT" backup-last backup-mid

step() {
    name=$1
    shift
    echo "scenario: $name" >&2
    "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
    echo $? > "$OUT/$name.rc"
}

IMG=images/t_00007_c3.png
LENET="mnist.dataset mnist_lenet.cfg mnist_lenet.weights $IMG"
# The seed's example: the softmax and the layers before it in the TA.
step 01-predict-seed "$D" classifier predict -pp_start 4 -pp_end 10 $LENET
step 02-predict-plain "$D" classifier predict $LENET
# First, middle, last and all layers in the TA.
step 03-predict-first "$D" classifier predict -pp_start 0 -pp_end 3 $LENET
step 04-predict-middle "$D" classifier predict -pp_start 4 -pp_end 6 $LENET
step 05-predict-last "$D" classifier predict -pp_start 8 -pp_end 10 $LENET
step 06-predict-all "$D" classifier predict -pp_start 0 -pp_end 10 $LENET
step 07-predict-topk "$D" classifier predict -tee_output topk -pp_start 4 -pp_end 10 $LENET
# The plans: no session needed; the TA's built-in TA_DATA_SIZE.
step 08-plan-lenet "$D" tee plan mnist_lenet.cfg -train
step 09-plan-demo "$D" tee plan cfg/fashion_lenet.cfg -train
# Short trainings from the fixture's weights; each saves x.weights + x.weights.tz.
step 10-train-last "$D" classifier train -clear -pp_start 7 -pp_end 10 train-last.data \
    train.cfg mnist_lenet.weights
step 11-train-middle "$D" classifier train -clear -pp_start 2 -pp_end 5 train-mid.data \
    train.cfg mnist_lenet.weights
# Reload the sealed saves; a sealed save is refused with another partition.
step 12-predict-sealed-last "$D" classifier predict -pp_start 7 -pp_end 10 train-last.data \
    train.cfg backup-last/train_final.weights $IMG
step 13-predict-sealed-middle "$D" classifier predict -pp_start 2 -pp_end 5 train-mid.data \
    train.cfg backup-mid/train_final.weights $IMG
step 14-refuse-other-partition "$D" classifier predict -pp_start 4 -pp_end 10 train-last.data \
    train.cfg backup-last/train_final.weights $IMG
# A hostile host through the GP Client API.
step 15-hostile "$H"

# Provisioning to this device: its key, the owner's seal (a new key pair per device, so these
# two steps' outputs name it and only their exit status is compared: OUT/NAME.rc, with the
# output in OUT/NAME.log), then what the sealed policy and rollback record allow.
keyed() {
    name=$1
    shift
    echo "scenario: $name" >&2
    "$@" > "$OUT/$name.log" 2>&1
    echo $? > "$OUT/$name.rc"
}
keyed 16-tee-pubkey sh -c "\"$D\" tee pubkey > device.pub"
keyed 17-seal-v2 "$D" seal -pp_start 4 -pp_end 10 -version 2 mnist_lenet.cfg \
    mnist_lenet.weights device.pub -o owner2
step 18-predict-provisioned "$D" classifier predict -pp_start 4 -pp_end 10 mnist.dataset \
    mnist_lenet.cfg owner2.weights $IMG
step 19-refuse-training "$D" classifier train -pp_start 4 -pp_end 10 train-last.data \
    train.cfg owner2.weights
keyed 20-seal-v1 "$D" seal -pp_start 4 -pp_end 10 -version 1 mnist_lenet.cfg \
    mnist_lenet.weights device.pub -o owner1
step 21-refuse-rollback "$D" classifier predict -pp_start 4 -pp_end 10 mnist.dataset \
    mnist_lenet.cfg owner1.weights $IMG
# Training with the segment's weights streamed through the TA (issue 11), saved as a streamed
# save (x.weights + the chunks in x.weights.tz) in backup-stream/, then resumed from it.
mkdir -p backup-stream
sed 's|^backup=.*|backup=backup-stream|' train-last.data > train-stream.data
step 22-train-streamed "$D" classifier train -clear -tee_stream -tee_output scores \
    -pp_start 4 -pp_end 10 train-stream.data train.cfg mnist_lenet.weights
sed 's/^max_batches=.*/max_batches=5/' train.cfg > train-more.cfg
step 23-resume-streamed "$D" classifier train -tee_stream -tee_output scores -pp_start 4 \
    -pp_end 10 train-stream.data train-more.cfg backup-stream/train_final.weights
# The streamed save back resident (batch 1 fits): DZ_CMD_LOAD_CHUNK.
step 24-predict-streamed-resident "$D" classifier predict -pp_start 4 -pp_end 10 \
    train-stream.data train-more.cfg backup-stream/train-more_final.weights $IMG

# AlexNet's classifier head (58.6 M parameters, 237 MB resident) in a 12 MiB TA: darknetp
# streams it, and every score (CSV, %.9g) must be the bytes of the run with no TEE.
# Times from /proc/uptime (centiseconds; busybox's date has whole seconds only).
uptime_cs() {
    read -r up _ < /proc/uptime
    echo "${up%.*}${up#*.}" | sed 's/^0*//'
}
timed() {
    t0=$(uptime_cs)
    step "$@"
    dt=$(($(uptime_cs) - t0))
    printf '%s %d.%02d s\n' "$1" $((dt / 100)) $((dt % 100)) >> "$OUT/alexnet.times"
}
if [ -d alexnet ]; then
    AX="alexnet/alexnet.data alexnet/alexnet.cfg alexnet.weights alexnet/images.txt"
    timed 25-alexnet-plain "$D" classifier predict $AX
    eval "${DZ_TA12_ON:-}"
    # alexnet/probe (check-optee's DZ_OPTEE_AX_PROBE, on OP-TEE only): working-buffer caps to
    # try first, each for at most 30 s, to find which ones OP-TEE's page tables take
    # (host/partition.h, DZ_STREAM_WORK_MAX). OUT/alexnet.probe says how each ended.
    if [ -s alexnet/probe ]; then
        for cap in $(cat alexnet/probe); do
            "$D" classifier predict $(cat alexnet/partition) -tee_output scores \
                -tee_chunk "$cap" $AX > /tmp/probe.out 2> /tmp/probe.err &
            pid=$!
            i=0
            while [ $i -lt 30 ] && kill -0 $pid 2> /dev/null; do
                sleep 1
                i=$((i + 1))
            done
            if kill -0 $pid 2> /dev/null; then
                kill $pid
                wait $pid
                r="still running after $i s"
            else
                wait $pid
                r="exit $? after $i s"
            fi
            echo "-tee_chunk $cap: $r; $(grep '^darknetp: ' /tmp/probe.err | tail -n 1)" \
                >> "$OUT/alexnet.probe"
            sleep 2
        done
    fi
    timed 26-alexnet-head "$D" classifier predict $(cat alexnet/partition) -tee_output scores $AX
    eval "${DZ_TA12_OFF:-}"
    # 234 MB: the guest's RAM holds the whole root file system.
    rm -f alexnet.weights
fi

# The normal-world halves of the saves (darknet format, sealed layers as zeros) must be the
# same bytes in both worlds; the sealed blobs differ (device key, random nonce) but not in size.
sha256sum backup-*/*.weights > "$OUT/weights.sha256"
for f in backup-*/*.tz; do
    echo "$f $(wc -c < "$f" | tr -d ' ')"
done > "$OUT/sealed.sizes"
