#!/usr/bin/env bash
# Build the Debian packages and check them in a fresh Debian chroot: install
# them with apt (which fetches their Depends from the mirror), draw
# activations with the installed cnnviz and its own model, and build and run
# samples/classify.c with pkg-config against libcnnviz-dev.
# Needs root, debootstrap and Debian's mirror; takes minutes (debootstrap).
# Usage: scripts/check-deb.sh [BUILD_DIR [CHROOT_DIR]]
#   BUILD_DIR (default build-deb) is configured with -DCMAKE_INSTALL_PREFIX=/usr;
#   CHROOT_DIR (default: a new one under /tmp, removed at the end) may be a
#   debootstrap --variant=minbase tree made before, which is then reused.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-deb}
root=${2:-}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
if [ "$(id -u)" != 0 ]; then echo "check-deb: needs root (debootstrap, chroot)" >&2; exit 77; fi
command -v debootstrap >/dev/null || { echo "check-deb: apt-get install debootstrap" >&2; exit 77; }

cmake -S . -B "$build" -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$build" -j"$(nproc)" --target cnnviz cnnviz_shared cnnviz_lib cnnviz_docs
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >/dev/null)

made_root=""
if [ -z "$root" ]; then
  root=$(mktemp -d /tmp/cnnviz-chroot-XXXXXX)
  made_root=$root
fi
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  if [ -n "$made_root" ]; then rm -rf "$made_root"; fi
}
trap cleanup EXIT
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase "$suite" "$root" http://deb.debian.org/debian >/dev/null
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"   # cnnviz finds its model through /proc/self/exe
mkdir -p "$root/tmp/debs"
cp "$build"/*.deb samples/classify.c "$root/tmp/debs/"
chroot "$root" /bin/sh -ec '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends /tmp/debs/cnnviz_*.deb >/dev/null
  cd /tmp
  cnnviz --version
  cnnviz activations /usr/share/cnnviz/digits/digit-5.png -o /tmp/act.png
  test -s /tmp/act.png
  apt-get install -y -qq --no-install-recommends /tmp/debs/libcnnviz0_*.deb /tmp/debs/libcnnviz-dev_*.deb gcc libc6-dev >/dev/null
  cc /tmp/debs/classify.c $(pkg-config --cflags --libs cnnviz) -o /tmp/classify
  /tmp/classify /usr/share/cnnviz/model.h5 /usr/share/cnnviz/digits/digit-7.png | grep "digit-7.png: 7 "
'
echo "check-deb: the packages install and run in a fresh $suite chroot"
