#!/usr/bin/env bash
# cnnviz explain: usage errors (exit 2, one line, no file left), the same
# bytes from two runs and from two thread counts, and the --dump shapes of
# every method (h5 and npy alike) and the --json fields.
. "$(dirname "$0")/lib.bash"
need_shared data/mnist/t10k-images-idx3-ubyte.gz
X=$SHARED/data/mnist/t10k-images-idx3-ubyte.gz
M=$CNNVIZ_SOURCE_DIR/samples/model.h5
mkdir "$TMP/work" && cd "$TMP/work" || exit 1

expect_error 2 "is not a method" "$CNNVIZ" explain "$X@0" --method nonsense -o e.png
expect_error 2 "class 10 is outside the model's outputs \(0\.\.9\)" "$CNNVIZ" explain "$X@0" --class 10 -o e.png
expect_error 2 "layer 'flatten' has no spatial maps \(layers that have them: conv2d, max_pooling2d, conv2d_1, max_pooling2d_1, conv2d_2\)" \
  "$CNNVIZ" explain "$X@0" --method gradcam --layer flatten -o e.png
expect_error 2 "layer 'dense' has no spatial maps" "$CNNVIZ" explain "$X@0" --method scorecam --layer 6 -o e.png
expect_error 2 "a 29 x 29 patch is larger than the 28 x 28 image" "$CNNVIZ" explain "$X@0" --patch 29 -o e.png
expect_error 2 "steps" "$CNNVIZ" explain "$X@0" --steps 0 -o e.png
expect_error 2 "samples" "$CNNVIZ" explain "$X@0" --samples 0 -o e.png
expect_error 2 "noise" "$CNNVIZ" explain "$X@0" --noise -1 -o e.png
expect_error 2 "no IMAGE" "$CNNVIZ" explain -o e.png
expect_error 2 "no layer 'nope'" "$CNNVIZ" explain "$X@0" --layer nope -o e.png
expect_error 1 "out of range" "$CNNVIZ" explain "$X@99999" -o e.png
expect_error 2 "the model has no Conv2D layer \(layers with spatial maps: none\)" "$CNNVIZ" explain "$SHARED/data/keras/k3h5_mlp.h5" "$X@0" --method gradcam -o e.png
check "no partial file after errors" test -z "$(ls)"

# determinism: two runs, and two thread counts, give the same bytes
"$CNNVIZ" explain "$X@0" "$X@8" --threads 2 -o a.png --dump a.h5 --quiet && pass || fail "explain failed"
"$CNNVIZ" explain "$X@0" "$X@8" --threads 2 -o b.png --dump b.h5 --quiet && pass || fail "explain failed"
"$CNNVIZ" explain "$X@0" "$X@8" --threads 1 -o c.png --dump c/ --quiet && pass || fail "explain failed"
"$CNNVIZ" explain "$X@0" "$X@8" --threads 2 -o same.png --quiet && mv same.png first.png &&
  "$CNNVIZ" explain "$X@0" "$X@8" --threads 2 -o same.png --quiet
check "the same command gives the same bytes" cmp -s first.png same.png
# (the PNG's provenance names the output, so the pixels are compared)
pixels() { "$CNNVIZ" checksum "$1" | cut -d' ' -f1; }
check "same figure twice" test "$(pixels a.png)" = "$(pixels b.png)"
check "same figure with 1 and 2 threads" test "$(pixels a.png)" = "$(pixels c.png)"
check "same dump twice" cmp -s a.h5 b.h5
"$CNNVIZ" explain "$X@0" --method smoothgrad --seed 3 --dump s3.h5 --quiet && "$CNNVIZ" explain "$X@0" --method smoothgrad --seed 4 --dump s4.h5 --quiet
if cmp -s s3.h5 s4.h5; then fail "smoothgrad does not depend on the seed"; else pass; fi

# JSON fields
"$CNNVIZ" explain "$X@0" --json --method integrated-gradients --method gradcam > j.json && pass || fail "--json failed"
check "json has class, probability, score, min/max and completeness" \
  grep -q '"class":7,"probability":[0-9.e-]*,"score":[0-9.e-]*,"methods":{"integrated-gradients":{"min":[-0-9.e]*,"max":[-0-9.e]*,"completeness_error":' j.json
check "--json alone writes no figure" test ! -e explain.png

if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
  /usr/bin/python3 - a.h5 c <<'PY' && pass || fail "dump shapes (see above)"
import sys, os, h5py, numpy as np
h5, npy = sys.argv[1:3]
want = {"saliency": (2, 28, 28, 1), "smoothgrad": (2, 28, 28, 1), "integrated-gradients": (2, 28, 28, 1),
        "gradcam": (2, 3, 3), "gradcam++": (2, 3, 3), "scorecam": (2, 3, 3), "occlusion": (2, 13, 13),
        "class": (2,), "score": (2,), "probability": (2,), "input": (2, 28, 28, 1), "completeness": (2,)}
bad = 0
with h5py.File(h5, "r") as f:
    if sorted(f.keys()) != sorted(want):
        print("datasets:", sorted(f.keys())); bad += 1
    for name, shape in want.items():
        a, b = f[name][...], np.load(os.path.join(npy, name + ".npy"))
        if a.shape != shape or b.shape != shape:
            print(name, a.shape, b.shape); bad += 1
        elif not np.array_equal(a, b):
            print(name, "differs between 1 and 2 threads or h5 and npy"); bad += 1
    if list(f["class"][...]) != [7, 5]:
        print("classes", f["class"][...]); bad += 1
    if (f["gradcam"][...] < 0).any() or (f["scorecam"][...] < 0).any():
        print("a CAM map below 0"); bad += 1
sys.exit(1 if bad else 0)
PY
fi
finish
