#!/usr/bin/env bash
# Install the Debian packages cnnviz builds, tests and runs with.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds PyTorch and matplotlib for bench/)
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libhdf5-dev libcairo2-dev libpng-dev libjpeg62-turbo-dev
      libcjson-dev libzip-dev zlib1g-dev libssl-dev libseccomp-dev check fonts-dejavu-core
      python3 python3-numpy python3-h5py dataset-fashion-mnist
      man-db python3-pytest)
if [ "${1:-}" = "--bench" ]; then pkgs+=(python3-torch python3-matplotlib hyperfine); fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
# Skip the network when everything is already there.
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
