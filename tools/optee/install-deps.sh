#!/bin/sh
# Installs, on Debian 12, what `make check-optee` and `make deploy-arm64` need beyond
# tools/install-deps.sh: the arm64 cross compiler, QEMU, cpio, the TA dev kit's signing
# tools (python3-cryptography, python3-pyelftools), and Debian's arm64 architecture in
# apt's lists (for `apt-get download PKG:arm64`: the kernel, busybox, zlib and stb).
# Uses sudo when not root; does nothing when everything is there.
set -eu
PACKAGES="make gcc gcc-aarch64-linux-gnu qemu-system-arm cpio xz-utils python3 python3-cryptography python3-pyelftools"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# The arm64 architecture: added once; then apt's lists must know arm64 packages.
update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "adding the arm64 architecture to dpkg"
    $SUDO dpkg --add-architecture arm64
    update=1
fi
apt-cache show busybox-static:arm64 >/dev/null 2>&1 || update=1
[ -z "$missing" ] || update=1
if [ "$update" -eq 1 ]; then
    $SUDO apt-get update
fi
if [ -n "$missing" ]; then
    echo "installing:$missing"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $missing
fi
