#!/usr/bin/env bash
# --dump FILE.h5 and --dump DIR/ round-trip: h5py and numpy read them back,
# each dataset in the layer's own shape, equal to each other and to the
# independent float64 reference outputs for MNIST test image 0 (the
# input too, as the model took it).
. "$(dirname "$0")/lib.bash"
need_shared data/keras/tfk2_15_cnn.h5
need_shared data/keras/expected/tfk2_15_cnn/layers_img0
need_shared data/mnist/t10k-images-idx3-ubyte.gz
M=$SHARED/data/keras/tfk2_15_cnn.h5
X=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz@0
REF=$SHARED/data/keras/expected/tfk2_15_cnn/layers_img0
cd "$TMP" || exit 1

out=$("$CNNVIZ" activations "$M" "$X" --layer 0 --layer 2 --layer flatten_5 --layer 7 --dump acts.h5 -o fig.png)
[ $? = 0 ] && pass || fail "activations --dump acts.h5 failed"
case "$out" in "wrote fig.png (predicted 7, p = 1.0000) and acts.h5") pass ;; *) fail "unexpected report: $out" ;; esac
check "dump .h5 written" test -s acts.h5
"$CNNVIZ" activations "$M" "$X" --layer 0 --layer 2 --layer flatten_5 --layer 7 --dump npy/ -o fig2.png --quiet
check "dump folder written" test -s npy/conv2d_5.npy
check "one .npy per layer" test "$(ls npy | tr '\n' ' ')" = "conv2d_5.npy conv2d_6.npy dense_11.npy flatten_5.npy input.npy "
# the figure is the same with or without a dump
check "dump does not change the figure" cmp -s <("$CNNVIZ" checksum fig.png | cut -d' ' -f1) \
  <("$CNNVIZ" checksum fig2.png | cut -d' ' -f1)

if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
  /usr/bin/python3 - acts.h5 npy "$REF" <<'PY' && pass || fail "dumps do not match (see above)"
import sys, glob, os, h5py, numpy as np
h5, npy, ref = sys.argv[1:4]
want = {"input": (28, 28, 1), "conv2d_5": (26, 26, 32), "conv2d_6": (11, 11, 64), "flatten_5": (1024,),
        "dense_11": (10,)}
refs = {os.path.basename(p)[3:-4]: p for p in glob.glob(ref + "/[0-9][0-9]_*.npy")}
refs["input"] = ref + "/input.npy"
bad = 0
with h5py.File(h5, "r") as f:
    if sorted(f.keys()) != sorted(want):
        print("datasets:", sorted(f.keys())); bad += 1
    for name, shape in want.items():
        a = f[name][...]
        b = np.load(os.path.join(npy, name + ".npy"))
        r = np.load(refs[name])
        if a.dtype != np.float32 or a.shape != shape or b.shape != shape:
            print(name, a.dtype, a.shape, b.shape); bad += 1; continue
        if not np.array_equal(a, b):
            print(name, "h5 and npy differ"); bad += 1
        err = np.abs(a - r).max() / max(np.abs(r).max(), 1e-6)
        if err > 1e-4:
            print(name, "differs from the reference by", err); bad += 1
sys.exit(1 if bad else 0)
PY
else
  echo "note: h5py/numpy check skipped (python3-h5py not installed)"
fi
finish
