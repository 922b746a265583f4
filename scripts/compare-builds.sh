#!/usr/bin/env bash
# Whether two builds of cnnviz give the same bits: figures (pixel checksums
# of filters, activations and kernels), a short training (every weight) and
# the test-set probabilities. CI runs it on the usual build and on the
# CNNVIZ_AVX2_MAX one, which runs on this CPU what the usual build runs on
# an AVX2 CPU; it compares something only where this CPU has AVX-512.
# Usage: scripts/compare-builds.sh BUILD_A BUILD_B   (needs ../shared's MNIST)
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1/cnnviz b=$2/cnnviz
data=${CNNVIZ_DATA:-${CNNVIZ_SHARED:-../shared}/data/mnist}
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "compare-builds: no MNIST under $data: skipped"; exit 0; }
export CNNVIZ_DATA=$data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
same() { # what file_a file_b
    if cmp -s "$2" "$3"; then echo "same: $1"; else echo "DIFFERENT: $1"; fails=$((fails + 1)); fi
}
digit=samples/digit-7.png
for side in a b; do
    exe=${!side}
    mkdir "$tmp/$side"
    o=$tmp/$side
    for layer in 0 2 4 6; do
        "$exe" filters --layer $layer --steps 60 -o "$o/filters$layer.png" --quiet
    done
    "$exe" activations "$digit" -o "$o/activations.png" --quiet
    "$exe" kernels --layer 2 -o "$o/kernels.png" --quiet
    for f in "$o"/*.png; do "$exe" checksum "$f" | cut -d' ' -f1; done >"$o/figures.sum"
    # one direct conv that is not fused with its pooling (same padding), and the seed net
    "$exe" train -o "$o/same.h5" --arch C32k3same-P2-C64k3-P2-F-D10 --epochs 1 --limit 2000 --quiet
    "$exe" train -o "$o/seed.h5" --epochs 1 --limit 6000 --quiet
    for m in same seed; do
        /usr/bin/python3 - "$o/$m.h5" >"$o/$m.weights" <<'PY'
import hashlib, sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    names = []
    f["model_weights"].visititems(lambda n, d: names.append(n) if isinstance(d, h5py.Dataset) else None)
    for n in sorted(names):
        print(n, hashlib.sha256(np.ascontiguousarray(f["model_weights"][n][()]).tobytes()).hexdigest())
PY
    done
    "$exe" evaluate "$o/seed.h5" --probs "$o/probs.txt" --quiet >/dev/null
done
same "figures (filters of 4 layers, activations, kernels)" "$tmp/a/figures.sum" "$tmp/b/figures.sum"
same "weights after training a direct conv (same padding)" "$tmp/a/same.weights" "$tmp/b/same.weights"
same "weights after training the seed net" "$tmp/a/seed.weights" "$tmp/b/seed.weights"
same "test-set probabilities of the trained seed net" "$tmp/a/probs.txt" "$tmp/b/probs.txt"
[ "$fails" = 0 ]
