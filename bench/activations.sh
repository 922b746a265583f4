#!/bin/bash
# bench/activations.sh: a whole `cnnviz activations` process (load the model,
# read and preprocess the digit, run every layer, draw all layers, write the
# PNG) beside Python drawing the matching matplotlib figure from the same
# numbers (bench/activations.py, fed the activations cnnviz dumps).
#
#   bench/activations.sh [--runs N] [--model M.h5] [--image IMG] [BUILD_DIR]
#
# BUILD_DIR holds cnnviz (default: build). The model defaults to
# samples/model.h5, else the shared tfk2_15_cnn.h5; the image to
# samples/digit-7.png, else the shared 8_canvas128_1.png (a 128x128 canvas
# drawing, so preprocessing is part of the time). Times are milliseconds per
# process, median and best of N, wall clock and CPU (user + system), one
# thread each; on a busy machine the CPU column is the steadier one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
runs=20 build="$here/../build" model= image=
shared=${CNNVIZ_SHARED:-$here/../../shared}
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    -h|--help) sed -n 2,12p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) build=$1; shift ;;
    esac
done
cnnviz="$build/cnnviz"
[ -x "$cnnviz" ] || { echo "bench/activations.sh: $cnnviz not found: build first" >&2; exit 1; }
if [ -z "$model" ]; then
    model="$here/../samples/model.h5"
    [ -f "$model" ] || model="$shared/data/keras/tfk2_15_cnn.h5"
fi
if [ -z "$image" ]; then
    image="$here/../samples/digit-7.png"
    [ -f "$image" ] || image="$shared/data/digits/8_canvas128_1.png"
fi
cores=$(nproc --all)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnnviz-bench-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# the numbers both sides draw
"$cnnviz" activations "$model" "$image" --quiet --threads 1 --dump "$tmp/acts.h5" -o "$tmp/dump.png"

# run CMD...: append wall and CPU milliseconds to $tmp/wall and $tmp/cpu
TIMEFORMAT='%3R %3U %3S'
timed() {
    { time "$@" > "$tmp/stdout" 2> "$tmp/stderr"; } 2> "$tmp/time"
    read -r e u s < "$tmp/time"
    echo "$e * 1000" | bc >> "$tmp/wall"
    echo "($u + $s) * 1000" | bc >> "$tmp/cpu"
}
stats() { # prints "median best" of the numbers on stdin
    sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f\n", m, a[1]}'
}
rm -f "$tmp/wall" "$tmp/cpu"
for _ in $(seq "$runs"); do
    timed "$cnnviz" activations "$model" "$image" --quiet --threads 1 -o "$tmp/ours.png"
done
read -r c_med c_best < <(stats < "$tmp/wall")
read -r c_cpu c_cpu_best < <(stats < "$tmp/cpu")

pruns=$(( runs < 5 ? runs : 5 ))
rm -f "$tmp/wall" "$tmp/cpu"
: > "$tmp/pf.txt"
for _ in $(seq "$pruns"); do
    timed /usr/bin/python3 "$here/activations.py" "$tmp/acts.h5" "$tmp/theirs.png"
    sed -n 's/.*figure_s=\([0-9.]*\).*/\1/p' "$tmp/stdout" | awk '{printf "%.1f\n", $1 * 1000}' >> "$tmp/pf.txt"
done
read -r p_med p_best < <(stats < "$tmp/wall")
read -r p_cpu p_cpu_best < <(stats < "$tmp/cpu")
read -r pf_med pf_best < <(stats < "$tmp/pf.txt")

size() { stat -c %s "$1"; }
dims() { "$cnnviz" checksum "$1" | awk '{print $2}'; }
echo "activations figure, all layers, PNG: $(basename "$model") on $(basename "$image")"
echo "$cores cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf "%-44s %10s %10s %10s %10s %10s %10s\n" "" "wall med" "wall best" "cpu med" "cpu best" "pixels" "PNG bytes"
printf "%-44s %10s %10s %10s %10s %10s %10s\n" "cnnviz activations (whole process)" "$c_med" "$c_best" "$c_cpu" "$c_cpu_best" \
    "$(dims "$tmp/ours.png")" "$(size "$tmp/ours.png")"
printf "%-44s %10s %10s %10s %10s %10s %10s\n" "python3 + matplotlib $(/usr/bin/python3 -c 'import matplotlib; print(matplotlib.__version__)') (whole process)" \
    "$p_med" "$p_best" "$p_cpu" "$p_cpu_best" "$(dims "$tmp/theirs.png")" "$(size "$tmp/theirs.png")"
printf "%-44s %10s %10s\n" "  of which building + saving the figure" "$pf_med" "$pf_best"
printf "%-44s %9.1fx %10s %9.1fx\n" "cnnviz advantage (median)" "$(echo "$p_med / $c_med" | bc -l)" "" "$(echo "$p_cpu / $c_cpu" | bc -l)"
