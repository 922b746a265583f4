#!/usr/bin/env bash
# Attribution maps, cnnviz beside PyTorch (Debian's python3-torch), same
# network, same weights, same thread count, measured in one run: saliency
# and Grad-CAM over the 10,000 test images, and a whole process that
# explains one digit with every method.
# usage: bench/explain.sh [BUILD_DIR] [MODEL.h5] [THREADS] [N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
build=${1:-$root/build}; model=${2:-$root/samples/model.h5}; threads=${3:-$(nproc)}; n=${4:-10000}
shared=${CNNVIZ_SHARED:-$root/../shared}
images=$shared/data/mnist/t10k-images-idx3-ubyte.gz
digit=$root/samples/digit-7.png
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ -x "$build/bench_explain" ] || { echo "build first: cmake --build $build"; exit 1; }
$py -c 'import torch, h5py' 2>/dev/null || { echo "needs python3-torch python3-h5py"; exit 1; }

c=$(OMP_NUM_THREADS=$threads "$build/bench_explain" "$model" "$images" "$threads" "$n")
t=$(OMP_NUM_THREADS=$threads $py "$here/explain.py" "$model" "$images" "$threads" "$n")
"$build/cnnviz" explain "$model" "$digit" --dump "$tmp/one/" --quiet --method saliency
$py -c "import numpy as np; np.save('$tmp/x.npy', np.load('$tmp/one/input.npy')[0])"

# whole processes: median wall time of N runs
proc_ms() {
  local n=$1; shift
  for i in $(seq "$n"); do
    local s=$(date +%s%N); "$@" >/dev/null 2>&1; local e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
  done | sort -n | awk '{a[NR]=$1} END{printf "%.1f", a[int((NR+1)/2)]/1000}'
}
cp_ms=$(OMP_NUM_THREADS=$threads proc_ms 11 "$build/cnnviz" explain "$model" "$digit" --method all -o "$tmp/e.png" \
  --quiet --threads "$threads")
tp_ms=$(OMP_NUM_THREADS=$threads proc_ms 5 $py "$here/explain.py" --one "$model" "$tmp/x.npy" "$threads")

get() { sed -E "s/.* $2=([0-9.]+).*/\1/" <<<" $1"; }
echo "explain, $(basename "$model"), $n test images, $threads threads, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1 /proc/loadavg)"
printf '| %-52s | %10s | %10s | %7s |\n' "metric (lower is better)" "cnnviz" "PyTorch $($py -c 'import torch;print(torch.__version__)')" "ratio"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------------" "------------" "------------" "---------"
for m in saliency gradcam; do
  for k in s cpu_s; do
    a=$(get "$c" ${m}_$k); b=$(get "$t" ${m}_$k)
    label="$m, $n images, $([ $k = s ] && echo 'wall s, best of 3' || echo 'CPU s of that run, all threads')"
    printf '| %-52s | %10.3f | %10.3f | %6.1fx |\n' "$label" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{print b/a}')"
  done
done
printf '| %-52s | %10s | %10s | %6.1fx |\n' "whole process, one digit, all 7 methods, ms (median)" "$cp_ms" "$tp_ms" \
  "$(awk -v a="$cp_ms" -v b="$tp_ms" 'BEGIN{print b/a}')"
echo "(cnnviz's process also reads and preprocesses the PNG and writes the figure; PyTorch's reads the input as .npy and draws nothing)"
