#!/usr/bin/env bash
# Inference speed, cnnviz beside PyTorch (Debian's python3-torch), same network,
# same weights, same thread count, measured in one run.
# usage: bench/infer.sh [BUILD_DIR] [MODEL.h5] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
build=${1:-$root/build}; model=${2:-$root/samples/model.h5}; threads=${3:-$(nproc)}
shared=${CNNVIZ_SHARED:-$root/../shared}
images=$shared/data/mnist/t10k-images-idx3-ubyte.gz
digit=$root/samples/digit-7.png
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
[ -x "$build/bench_infer" ] || { echo "build first: cmake --build $build"; exit 1; }
$py -c 'import torch, h5py, PIL' 2>/dev/null || { echo "needs python3-torch python3-h5py python3-pil (scripts/install-deps.sh --bench)"; exit 1; }

c=$("$build/bench_infer" "$model" "$images" "$threads")
t=$($py "$here/infer.py" "$model" "$images" "$threads" "$tmp/torch_probs.txt")
"$build/cnnviz" evaluate "$model" --images "$images" --labels "${images/images-idx3/labels-idx1}" --limit 100 \
  --probs "$tmp/cnnviz_probs.txt" --quiet >/dev/null
agree=$(paste -d' ' "$tmp/cnnviz_probs.txt" "$tmp/torch_probs.txt" |
  awk '{h=NF/2; for(i=1;i<=h;i++){d=$i-$(i+h); if(d<0)d=-d; if(d>w)w=d}} END{printf "%.2g", w}')

get() { sed -E "s/.* $2=([0-9.]+).*/\1/" <<<" $1"; }
# whole processes: median wall time of N runs
proc_ms() {
  local n=$1; shift
  for i in $(seq "$n"); do
    local s=$(date +%s%N); "$@" >/dev/null 2>&1; local e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
  done | sort -n | awk '{a[NR]=$1} END{printf "%.1f", a[int((NR+1)/2)]/1000}'
}
# the same, alternating the model parsed in a child process (the default, src/io/isolate.c) and in
# process (CNNVIZ_LOAD_IN_PROCESS=1), so that the machine's load drifts alike over both; prints both medians
pair_ms() {
  local n=$1; shift
  for i in $(seq "$n"); do
    for ip in 0 1; do
      local s=$(date +%s%N); CNNVIZ_LOAD_IN_PROCESS=$ip "$@" >/dev/null 2>&1; local e=$(date +%s%N)
      echo "$ip $(( (e - s) / 1000 ))"
    done
  done | sort -k1,1n -k2,2n |
    awk '{v[$1, ++n[$1]] = $2} END{for (k = 0; k <= 1; k++) printf "%.1f ", v[k, int((n[k]+1)/2)]/1000}'
}
read -r cp_ms ci_ms < <(OMP_NUM_THREADS=$threads pair_ms 50 "$build/cnnviz" predict "$model" "$digit" --quiet --threads "$threads")
tp_ms=$(OMP_NUM_THREADS=$threads proc_ms 5 $py "$here/predict_process.py" "$model" "$digit")

ct=$(get "$c" throughput); tt=$(get "$t" throughput)
cl=$(get "$c" latency_us); tl=$(get "$t" latency_us)
echo "inference, $(basename "$model"), $threads threads, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf '| %-44s | %12s | %12s | %8s |\n' "metric" "cnnviz" "PyTorch $($py -c 'import torch;print(torch.__version__)')" "ratio"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "--------------" "--------------" "----------"
printf '| %-44s | %12.0f | %12.0f | %7.1fx |\n' "images/s, 10k test set, batch 256 (higher)" "$ct" "$tt" "$(awk -v a="$ct" -v b="$tt" 'BEGIN{print a/b}')"
printf '| %-44s | %12.1f | %12.1f | %7.1fx |\n' "single-image latency in process, us (lower)" "$cl" "$tl" "$(awk -v a="$cl" -v b="$tl" 'BEGIN{print b/a}')"
printf '| %-44s | %12s | %12s | %7.1fx |\n' "whole predict process on one PNG, ms (lower)" "$cp_ms" "$tp_ms" "$(awk -v a="$cp_ms" -v b="$tp_ms" 'BEGIN{print b/a}')"
printf '| %-44s | %12s | %12s | %8s |\n' "the same, model parsed in process, ms (lower)" "$ci_ms" "" ""
echo "cost of reading the model in a child process (median isolated - median in process): $(awk -v a="$cp_ms" -v b="$ci_ms" 'BEGIN{printf "%.1f", a-b}') ms"
echo "same network check: max |p_cnnviz - p_torch| over the first 100 test images = $agree"
