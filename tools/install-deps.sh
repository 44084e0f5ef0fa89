#!/bin/sh
# Installs the Debian 12 packages darknetp needs to build, test, check formatting and run
# its demo.
# Uses sudo when not root. The one list, shared by the README's quick start and CI.
set -e
# gcc's libasan/libubsan serve `make test`'s sanitizer run; gcc-aarch64-linux-gnu its
# check-ta-arm64; clang-format is for `make format-check`; clang (its libFuzzer) for `make fuzz-short`.
PACKAGES="gcc make libc6-dev libstb-dev zlib1g-dev libcmocka-dev libssl-dev gcc-aarch64-linux-gnu clang-format clang dataset-fashion-mnist"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y $missing
fi
