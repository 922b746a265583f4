#!/usr/bin/env bash
# Gradient-ascent patterns (cnnviz filters), cnnviz beside PyTorch autograd
# (Debian's python3-torch) running the same algorithm from the same starting
# images, same steps, normalisation and thread count, in one run: every map
# of every Conv2D layer (160 on the seed net), one start of STEPS steps each.
# usage: bench/oip.sh [BUILD_DIR] [MODEL.h5] [THREADS] [STEPS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
build=${1:-$root/build}; model=${2:-$root/samples/model.h5}; threads=${3:-$(nproc)}; steps=${4:-200}
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ -x "$build/bench_oip" ] || { echo "build first: cmake --build $build"; exit 1; }
$py -c 'import torch, h5py' 2>/dev/null || { echo "needs python3-torch and python3-h5py"; exit 1; }

cores=$(nproc)
export OMP_NUM_THREADS=$threads
c=$("$build/bench_oip" "$model" "$threads" "$steps" "$tmp/oip.h5")
t=$($py "$here/oip.py" "$model" "$threads" "$steps" "$tmp/oip.h5")

field() { sed -nE "s/.* $2=([^ ]+).*/\1/p" <<<" $1"; }
echo "gradient-ascent patterns, $(basename "$model"), $steps steps, 1 start, $threads threads, $cores cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1 /proc/loadavg)"
printf '| %-22s | %5s | %11s | %11s | %7s | %16s | %16s |\n' "layer" "maps" "cnnviz s" "PyTorch s" "speedup" "cnnviz mean act" "PyTorch mean act"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "------------------------" "-------" "-------------" "-------------" "---------" "------------------" "------------------"
while read -r cl; do
  L=$(field "$cl" layer)
  tl=$(grep "^layer=$L " <<<"$t")
  cs=$(field "$cl" seconds); ts=$(field "$tl" seconds)
  printf '| %-22s | %5s | %11.3f | %11.3f | %6.1fx | %16.4f | %16.4f |\n' "$L $(field "$cl" name)" "$(field "$cl" maps)" \
    "$cs" "$ts" "$(awk -v a="$cs" -v b="$ts" 'BEGIN{print b/a}')" "$(field "$cl" mean_activation)" "$(field "$tl" mean_activation)"
done < <(grep '^layer=' <<<"$c")
ct=$(grep '^total' <<<"$c"); tt=$(grep '^total' <<<"$t")
cs=$(field "$ct" seconds); ts=$(field "$tt" seconds)
printf '| %-22s | %5s | %11.3f | %11.3f | %6.1fx | %16s | %16s |\n' "all" "$(field "$ct" maps)" "$cs" "$ts" \
  "$(awk -v a="$cs" -v b="$ts" 'BEGIN{print b/a}')" "" ""
echo "goal: all maps in 3 s or less and at least 5x PyTorch $(field "$tt" torch); each time the best of ${BENCH_REPEAT:-3} runs"
