#!/usr/bin/env bash
# valgrind (memcheck) over predict, activations, filters and a short train, with the model read in the
# child process as the CLI does (src/io/isolate.c; under valgrind the child skips its seccomp filter,
# RLIMIT_FSIZE and RLIMIT_NOFILE, which valgrind itself cannot run under). Every process, the reader child
# included, writes its own report (--log-file=...%p); the one suppression (tests/valgrind.supp) is
# fontconfig's one-time setup. Exits non-zero when any process reports an error or a definite leak.
# usage: scripts/valgrind.sh [BUILD_DIR]   (VALGRIND_NO_TRAIN=1 leaves out train, ~15 min on a busy 2-core box)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shared=${CNNVIZ_SHARED:-$root/../shared}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
digit=$root/samples/digit-7.png
vg=(valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite
    --suppressions="$root/tests/valgrind.supp")
fails=0
run() { # run NAME ARGS...: cnnviz ARGS under valgrind, then each process's summary line
  local name=$1; shift
  mkdir -p "$tmp/$name"
  "${vg[@]}" --log-file="$tmp/$name/vg.%p" "$build/cnnviz" "$@" >/dev/null 2>"$tmp/$name/stderr"
  local rc=$?
  echo "$name: exit $rc"
  for f in "$tmp/$name"/vg.*; do
    echo "  $(grep -m1 'ERROR SUMMARY' "$f" | sed 's/^==[0-9]*== //') [pid ${f##*.}]"
    grep -q 'ERROR SUMMARY: 0 errors' "$f" || { cat "$f"; fails=$((fails + 1)); }
  done
  [ "$rc" = 0 ] || { cat "$tmp/$name/stderr"; fails=$((fails + 1)); }
}
run predict predict "$digit"
run activations activations "$digit" -o "$tmp/activations.png"
run filters filters --layer conv2d_1 --maps 0-3 --steps 5 -o "$tmp/filters.png"
if [ -z "${VALGRIND_NO_TRAIN:-}" ] && [ -d "$shared/data/mnist" ]; then
  run train train --epochs 1 --limit 2000 --validation none --data "$shared/data/mnist" -o "$tmp/model.h5"
else
  echo "train: skipped (VALGRIND_NO_TRAIN is set, or $shared/data/mnist is missing: set CNNVIZ_SHARED)"
fi
echo "$fails failures"
[ "$fails" = 0 ]
