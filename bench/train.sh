#!/bin/bash
# bench/train.sh: cnnviz beside PyTorch training the seed net on MNIST in one
# run: the same network, optimizer (RMSprop lr 0.001, rho 0.9), batch and
# thread count; seconds per epoch of 60,000 images and peak RSS.
#
#   bench/train.sh [--threads N] [--epochs N] [--batch B] [--limit N] [--profile] [BUILD_DIR]
#
# BUILD_DIR holds bench_train (default: build). PyTorch is Debian's
# python3-torch, run with /usr/bin/python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
threads=2 epochs=1 batch=64 limit=0 profile= build="$here/../build"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --profile) profile=--profile; shift ;;
    -h|--help) sed -n 2,9p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) build=$1; shift ;;
    esac
done
bench="$build/bench_train"
[ -x "$bench" ] || { echo "bench/train.sh: $bench not found: build first (cmake --build $build)" >&2; exit 1; }

common=(--threads "$threads" --epochs "$epochs" --batch "$batch" --limit "$limit")
# the OpenMP pools (and any BLAS pool PyTorch has) follow the same count on both sides
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

c_out=$("$bench" "${common[@]}" $profile)
t_out=$(/usr/bin/python3 "$here/train.py" "${common[@]}")

field() { sed -n "s/.*\<$2=\([^ ]*\).*/\1/p" <<<"$1" | head -1; }
c_s=$(field "$c_out" seconds_per_epoch) c_cpu=$(field "$c_out" cpu_seconds_per_epoch)
c_rss=$(field "$c_out" peak_rss_mb) c_acc=$(field "$c_out" test_accuracy)
t_s=$(field "$t_out" seconds_per_epoch) t_cpu=$(field "$t_out" cpu_seconds_per_epoch)
t_rss=$(field "$t_out" peak_rss_mb) t_acc=$(field "$t_out" test_accuracy)
images=$(field "$c_out" images)

echo "seed net C32k3-P2-C64k3-P2-C64k3-F-D70-D10, RMSprop, batch $batch, $threads threads, $epochs epoch(s) of $images images"
echo "$(nproc --all) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
printf "%-22s %12s %14s %12s %10s\n" "" "s/epoch" "CPU s/epoch" "peak RSS MB" "test acc"
printf "%-22s %12s %14s %12s %10s\n" "cnnviz" "$c_s" "$c_cpu" "$c_rss" "$c_acc"
printf "%-22s %12s %14s %12s %10s\n" "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')" "$t_s" "$t_cpu" "$t_rss" "$t_acc"
printf "%-22s %11.1fx %13.1fx %11.1fx\n" "cnnviz advantage" "$(echo "$t_s / $c_s" | bc -l)" "$(echo "$t_cpu / $c_cpu" | bc -l)" "$(echo "$t_rss / $c_rss" | bc -l)"
echo "(wall and CPU time of the training epochs only; CPU time counts every thread, spinning included)"
if [ -n "$profile" ]; then
    sed -n '/where one epoch/,$p' <<<"$c_out"
fi
