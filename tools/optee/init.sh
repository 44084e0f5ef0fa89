#!/bin/busybox sh
# /init of the check-optee initramfs (busybox sh on the QEMU guest): brings up the OP-TEE
# driver and tee-supplicant as /work/shared/optee-qemu/README.md describes, runs
# /scenario.sh in /scn, prints every output file to the console (serial0) as hex between
# markers for tools/optee/check-optee.sh to decode, and powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
insmod /lib/modules/tee.ko
insmod /lib/modules/optee.ko
mkdir -p /data/tee
tee-supplicant -d
# The driver probes asynchronously: wait for its device nodes.
i=0
while [ ! -e /dev/tee0 ] || [ ! -e /dev/teepriv0 ]; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "@@@ERROR no /dev/tee0 after 10 s"
        poweroff -f
    fi
    sleep 0.1
done
cd /scn
# tee-supplicant reads /lib/optee_armtz/<uuid>.ta at every session open: AlexNet's steps get
# the TA built with a 12 MiB heap by a copy over it, and the default one back after them.
ta=5f6c0d1e-8a3b-4c27-9e4d-2b7a61c9f0d3.ta
export DZ_TA12_ON="cp /ta-12m/$ta /lib/optee_armtz/$ta" DZ_TA12_OFF="cp /ta-6m/$ta /lib/optee_armtz/$ta"
sh /scenario.sh /bin/darknetp /bin/dz-hostile /tmp/out
for f in /tmp/out/*; do
    echo "@@@FILE $(basename "$f")"
    od -An -v -tx1 "$f"
    echo "@@@END"
done
echo "@@@DONE"
sync
poweroff -f
