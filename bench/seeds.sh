#!/bin/bash
# bench/seeds.sh: the spread over seeds of the default training recipe (seed
# net, RMSprop lr 0.001, batch 64), cnnviz beside an independent PyTorch copy
# written to Keras' definitions (bench/seeds.py): test accuracy after the last
# epoch for each seed, then mean, standard deviation, range and how many
# seeds reach the bar, and the same for each seed's best epoch, and the
# first epoch at which each seed reaches the bar. --best trains
# the articles' best recipe instead: L2 0.001 on the Dense kernels, RMSprop
# momentum 0.9, InverseTimeDecay 0.001 per step (with --epochs 15 --bar 0.9935).
#
#   bench/seeds.sh [--seeds A-B] [--torch-seeds A-B] [--epochs N] [--threads N] [--bar ACC]
#                  [--best] [--no-torch] [BUILD_DIR]
#
# --torch-seeds runs PyTorch on other (fewer) seeds.
#
# BUILD_DIR holds cnnviz (default: build). Not a speed test: the two sides
# run one after the other, and PyTorch takes about 5x longer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seeds=1-10 torch_seeds= epochs=5 threads=2 bar=0.99 torch=1 build="$here/../build"
recipe="RMSprop lr 0.001" cnnviz_args=() torch_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --torch-seeds) torch_seeds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --bar) bar=$2; shift 2 ;;
    --no-torch) torch=; shift ;;
    --best)
        recipe="RMSprop lr 0.001, momentum 0.9, L2 0.001 on the Dense kernels, InverseTimeDecay 0.001 per step"
        cnnviz_args=(--l2 0.001 --momentum 0.9 --decay inverse-time --decay-rate 0.001)
        torch_args=(--l2 0.001 --momentum 0.9 --decay-rate 0.001)
        shift ;;
    -h|--help) sed -n 2,17p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) build=$1; shift ;;
    esac
done
cnnviz="$build/cnnviz"
[ -x "$cnnviz" ] || { echo "bench/seeds.sh: $cnnviz not found: build first (cmake --build $build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=$threads

# one line per seed, "seed=S acc=A1,...,AE", as bench/seeds.py prints them
for s in $(seq "${seeds%-*}" "${seeds#*-}"); do
    "$cnnviz" train -o "$tmp/m.h5" --seed "$s" --epochs "$epochs" --threads "$threads" "${cnnviz_args[@]}" --quiet --json >"$tmp/run.json"
    /usr/bin/python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["epochs"]
print("seed=%s acc=%s" % (sys.argv[2], ",".join("%.4f" % x["val_accuracy"] for x in e)))' "$tmp/run.json" "$s"
done >"$tmp/cnnviz.txt"
if [ -n "$torch" ]; then
    /usr/bin/python3 "$here/seeds.py" --seeds "${torch_seeds:-$seeds}" --epochs "$epochs" --threads "$threads" "${torch_args[@]}" >"$tmp/torch.txt"
fi

echo "seed net C32k3-P2-C64k3-P2-C64k3-F-D70-D10, $recipe, batch 64, $epochs epochs; MNIST test accuracy per seed (last epoch; best epoch; first epoch at $bar)"
echo
/usr/bin/python3 - "$bar" "$tmp/cnnviz.txt" ${torch:+"$tmp/torch.txt"} <<'EOF'
import statistics, sys
bar, runs = float(sys.argv[1]), {}
for name, path in zip(("cnnviz", "PyTorch, Keras' rules"), sys.argv[2:]):
    runs[name] = {}
    for line in open(path):
        seed, acc = line.split()
        runs[name][int(seed[5:])] = [float(t) for t in acc[4:].split(",")]
names = list(runs)


def first(a):  # the first epoch at or above the bar, or None
    return next((e + 1 for e, t in enumerate(a) if t >= bar), None)


def cell(a):  # last epoch, the best epoch and its number, the first epoch at the bar
    b, f = max(range(len(a)), key=lambda e: a[e]), first(a)
    return "%.4f (%.4f @%d) %4s" % (a[-1], a[b], b + 1, f if f else "-")


print("%-6s" % "seed" + "".join("%34s" % n for n in names))
print("%-6s" % "" + "".join("%34s" % "last (best @epoch) first@bar" for n in names))
for s in sorted(runs[names[0]]):
    print("%-6d" % s + "".join("%34s" % (cell(runs[n][s]) if s in runs[n] else "-") for n in names))
print()
for n in names:
    for what, accs in (("last", [a[-1] for a in runs[n].values()]), ("best", [max(a) for a in runs[n].values()])):
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print("%-22s %s epoch: mean %.4f  sd %.4f  min %.4f  max %.4f  >= %.4f: %d of %d"
              % (n, what, statistics.mean(accs), sd, min(accs), max(accs), bar, sum(t >= bar for t in accs), len(accs)))
    firsts = sorted(f for f in map(first, runs[n].values()) if f)
    print("%-22s reach %.4f at some epoch: %d of %d%s" % (n, bar, len(firsts), len(runs[n]),
          ", first at epoch %s" % ", ".join(map(str, firsts)) if firsts else ""))
    print("%-22s after epoch 1: mean %.4f" % (n, statistics.mean(a[0] for a in runs[n].values())))
EOF
