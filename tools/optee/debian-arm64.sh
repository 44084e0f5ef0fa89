#!/bin/sh
# Fetches from Debian's arm64 archive (apt-get download, no installation) what the arm64
# build and the QEMU boot need, into a cache folder, and unpacks it (dpkg -x):
#
#   debian-arm64.sh DIR libs   DIR/sysroot: zlib1g-dev, libstb-dev and libssl-dev for arm64
#                              (libz.a, libstb.a, libcrypto.a and their headers), to link
#                              darknetp statically
#   debian-arm64.sh DIR boot   DIR/boot/Image (the kernel, an uncompressed arm64 Image),
#                              DIR/boot/tee.ko, DIR/boot/optee.ko (the OP-TEE driver) from
#                              the linux-image-<version>-arm64 that linux-image-arm64 depends
#                              on today, and DIR/boot/busybox from busybox-static
#
# Needs the arm64 architecture in apt's lists (tools/optee/install-deps.sh). .deb files are
# kept in DIR/debs: a later run downloads only what changed in Debian.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 DIR libs|boot" >&2; exit 2; }
dir=$1
what=$2
mkdir -p "$dir/debs"
dir=$(cd "$dir" && pwd)

# fetch PKG: prints the path of PKG's arm64 .deb of the version apt knows now, downloading it
# unless the cache has it.
fetch() {
    ver=$(apt-cache policy "$1:arm64" | sed -n 's/^ *Candidate: *//p')
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
        echo "debian-arm64: apt knows no $1:arm64 (run tools/optee/install-deps.sh)" >&2
        exit 1
    fi
    # .deb names encode an epoch's ':' as %3a.
    deb="$dir/debs/${1}_$(echo "$ver" | sed 's/:/%3a/')_arm64.deb"
    if [ ! -s "$deb" ]; then
        (cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root "$1:arm64=$ver" >&2)
    fi
    [ -s "$deb" ] || { echo "debian-arm64: no $deb after apt-get download" >&2; exit 1; }
    echo "$deb"
}

case $what in
libs)
    # Unpacked again only when a package changed (the stamp lists the .deb files).
    debs="$(fetch zlib1g-dev) $(fetch libstb-dev) $(fetch libssl-dev)"
    if [ "$(cat "$dir/sysroot.stamp" 2>/dev/null)" != "$debs" ]; then
        rm -rf "$dir/sysroot"
        for d in $debs; do dpkg -x "$d" "$dir/sysroot"; done
        echo "$debs" > "$dir/sysroot.stamp"
    fi
    for f in usr/lib/aarch64-linux-gnu/libz.a usr/lib/aarch64-linux-gnu/libstb.a \
        usr/lib/aarch64-linux-gnu/libcrypto.a usr/include/zlib.h \
        usr/include/aarch64-linux-gnu/openssl/opensslconf.h; do
        [ -f "$dir/sysroot/$f" ] || { echo "debian-arm64: $f missing in sysroot" >&2; exit 1; }
    done
    ;;
boot)
    # The metapackage names the kernel of the day in its Depends; never a fixed version.
    meta=$(fetch linux-image-arm64)
    kpkg=$(dpkg-deb -f "$meta" Depends | tr ',|' '\n\n' | sed 's/^ *//; s/ .*//' |
        grep -m1 '^linux-image-[0-9]')
    [ -n "$kpkg" ] || { echo "debian-arm64: no linux-image-<version> in $meta's Depends" >&2; exit 1; }
    kdeb=$(fetch "$kpkg")
    bdeb=$(fetch busybox-static)
    if [ "$(cat "$dir/boot.stamp" 2>/dev/null)" != "$kdeb $bdeb" ]; then
        rm -rf "$dir/boot" "$dir/x"
        mkdir -p "$dir/boot"
        mkdir -p "$dir/x/kernel" "$dir/x/busybox"
        dpkg -x "$kdeb" "$dir/x/kernel"
        dpkg -x "$bdeb" "$dir/x/busybox"
        cp "$dir"/x/kernel/boot/vmlinuz-* "$dir/boot/Image"
        for m in tee optee; do
            ko=$(find "$dir/x/kernel/lib/modules" -name "$m.ko*" | head -n 1)
            [ -n "$ko" ] || { echo "debian-arm64: $m.ko not in $kdeb" >&2; exit 1; }
            case $ko in
            *.xz) xz -dc "$ko" > "$dir/boot/$m.ko" ;;
            *.zst) zstd -dc "$ko" > "$dir/boot/$m.ko" ;;
            *) cp "$ko" "$dir/boot/$m.ko" ;;
            esac
        done
        cp "$dir/x/busybox/bin/busybox" "$dir/boot/busybox"
        rm -rf "$dir/x"
        echo "$kdeb $bdeb" > "$dir/boot.stamp"
    fi
    echo "debian-arm64: kernel $kpkg"
    ;;
*)
    echo "usage: $0 DIR libs|boot" >&2
    exit 2
    ;;
esac
