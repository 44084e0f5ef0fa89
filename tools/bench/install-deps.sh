#!/bin/sh
# Installs what `make bench` needs beyond tools/install-deps.sh: PyTorch 1.13 from Debian 12
# (python3-torch), the baseline darknetp is compared with. Uses sudo when not root.
set -e
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: python3-torch"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-torch
