#!/usr/bin/env bash
# cnnviz train: a tiny run trains, saves a model that cnnviz and an
# independent h5py reader load with the same predictions, records its
# history/optimizer/seed/arch, and repeats bit-for-bit with the same seed.
. "$(dirname "$0")/lib.bash"
need_shared data/mnist/train-images-idx3-ubyte.gz
MNIST=$SHARED/data/mnist
ARCH=C8k3-P2-F-D16-D10
base=(--data "$MNIST" --arch "$ARCH" --limit 320 --batch 32 --epochs 2 --threads 1)
tiny=("${base[@]}" --seed 5)

# --json on stdout, Keras-like epoch lines on stderr
out=$("$CNNVIZ" train -o "$TMP/a.h5" "${tiny[@]}" --momentum 0.9 --l2 0.001 --json 2>"$TMP/err"); rc=$?
check "train exits 0 (rc $rc: $(cat "$TMP/err"))" test "$rc" = 0
check "model written" test -s "$TMP/a.h5"
check "two epoch lines" test "$(grep -Ec '^Epoch [12]/2 - [0-9.]+s - loss: [0-9.]+ - accuracy: [0-9.]+ - val_loss: [0-9.]+ - val_accuracy: [0-9.]+$' "$TMP/err")" = 2
check "json has two epochs" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
e = d["epochs"]
assert [x["epoch"] for x in e] == [1, 2]
for x in e:
    assert set(x) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"}, x
    assert 0 <= x["accuracy"] <= 1 and 0 <= x["val_accuracy"] <= 1 and x["seconds"] > 0
assert e[1]["loss"] < e[0]["loss"]
' "$out"
check "no temporary files left" test -z "$(ls -A "$TMP" | grep -v -e '^a.h5$' -e '^err$' -e '^stderr$')"

# the model loads back and evaluates; 320 images x 2 epochs is enough for > 60%
ev=$("$CNNVIZ" evaluate "$TMP/a.h5" --data "$MNIST" --limit 1000 --json)
check "evaluate the trained model ($ev)" /usr/bin/python3 -c 'import json,sys; assert json.loads(sys.argv[1])["accuracy"] > 0.6' "$ev"

# what the file records, read as Keras would (h5py): root attributes,
# model_weights/layer_names and weight_names, our extras, the L2 regularizer
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  "$CNNVIZ" evaluate "$TMP/a.h5" --data "$MNIST" --limit 20 --probs "$TMP/probs.txt" >/dev/null
  check "h5py reads the model as Keras would and predicts the same" /usr/bin/python3 - "$TMP/a.h5" "$TMP/probs.txt" "$MNIST" <<'PY'
import gzip, json, sys
import h5py, numpy as np
path, probs_path, mnist = sys.argv[1:4]
f = h5py.File(path, "r")
attr = lambda k: f.attrs[k].decode() if isinstance(f.attrs[k], bytes) else f.attrs[k]
cfg = json.loads(attr("model_config"))
layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
layers = [l for l in layers if l["class_name"] != "InputLayer"]
assert [l["class_name"] for l in layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"], layers
dense = [l for l in layers if l["class_name"] == "Dense"]
for l in dense:
    reg = l["config"]["kernel_regularizer"]
    assert reg and abs(reg["config"]["l2"] - 0.001) < 1e-9, reg
assert dense[-1]["config"]["activation"] == "softmax"
hist = json.loads(attr("cnnviz_history"))
assert len(hist["loss"]) == 2 and len(hist["val_accuracy"]) == 2, hist
opt = json.loads(attr("cnnviz_optimizer"))
assert opt["name"] == "rmsprop" and opt["momentum"] == 0.9, opt
assert attr("cnnviz_seed") == "5" and attr("cnnviz_arch") == "C8k3-P2-F-D16-D10"
g = f["model_weights"]
names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["layer_names"]]
W = {}
for n in names:
    for w in g[n].attrs["weight_names"]:
        w = w.decode() if isinstance(w, bytes) else w
        W.setdefault(n, []).append(np.array(g[n][w]))
with gzip.open(mnist + "/t10k-images-idx3-ubyte.gz") as fh:
    x = np.frombuffer(fh.read()[16:16 + 20 * 784], np.uint8).reshape(20, 28, 28, 1) / 255.0
# the forward pass in numpy, weights paired with layers by order
k, b = W[names[0]]
h = np.zeros((20, 26, 26, k.shape[3]))
for dy in range(3):
    for dx in range(3):
        h += np.einsum("nhwc,cf->nhwf", x[:, dy:dy + 26, dx:dx + 26, :], k[dy, dx])
h = np.maximum(h + b, 0)
h = h.reshape(20, 13, 2, 13, 2, -1).max(axis=(2, 4)).reshape(20, -1)
k, b = W[[n for n in names if n in W][1]]
h = np.maximum(h @ k + b, 0)
k, b = W[[n for n in names if n in W][2]]
z = h @ k + b
p = np.exp(z - z.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
ours = np.loadtxt(probs_path)
err = np.abs(p - ours).max()
assert err < 1e-5, err
PY
else
  echo "note: h5py checks skipped (python3-h5py not installed)"
fi

# the same seed, data and threads: bit-identical weights (compared through
# the probabilities printed with 9 significant digits and through h5py)
"$CNNVIZ" train -o "$TMP/b.h5" "${tiny[@]}" --momentum 0.9 --l2 0.001 --quiet
"$CNNVIZ" evaluate "$TMP/a.h5" --data "$MNIST" --limit 50 --probs "$TMP/pa.txt" >/dev/null
"$CNNVIZ" evaluate "$TMP/b.h5" --data "$MNIST" --limit 50 --probs "$TMP/pb.txt" >/dev/null
check "same seed, same probabilities" cmp -s "$TMP/pa.txt" "$TMP/pb.txt"
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  check "same seed, bit-identical weights" /usr/bin/python3 - "$TMP/a.h5" "$TMP/b.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["model_weights"] for p in sys.argv[1:3])
def tensors(g):
    out = {}
    g.visititems(lambda n, o: out.__setitem__(n, np.array(o)) if isinstance(o, h5py.Dataset) else None)
    return out
ta, tb = tensors(a), tensors(b)
assert ta.keys() == tb.keys() and len(ta) == 6
assert all(np.array_equal(ta[k], tb[k]) for k in ta)
PY
fi
# another seed: other weights
"$CNNVIZ" train -o "$TMP/c.h5" "${base[@]}" --seed 6 --momentum 0.9 --l2 0.001 --quiet --validation none
"$CNNVIZ" evaluate "$TMP/c.h5" --data "$MNIST" --limit 50 --probs "$TMP/pc.txt" >/dev/null
check "another seed, other probabilities" test -n "$(cmp "$TMP/pa.txt" "$TMP/pc.txt" 2>&1)"

# --quiet prints nothing; --val-split validates on the training set's tail
out=$("$CNNVIZ" train -o "$TMP/d.h5" "${tiny[@]}" --epochs 1 --val-split 0.25 --quiet --json 2>"$TMP/err")
check "quiet is quiet" test ! -s "$TMP/err"
check "val-split reports val_accuracy" grep -q '"val_accuracy"' <<<"$out"
# SGD with a 5x5 net and Adam with a schedule
check "sgd nesterov + exponential decay" "$CNNVIZ" train -o "$TMP/e.h5" "${tiny[@]}" --epochs 1 --quiet --arch C4k5-P2-F-D10 \
  --optimizer sgd --lr 0.05 --momentum 0.9 --nesterov --decay exponential --decay-rate 0.9 --decay-steps 5
check "adam + inverse-time staircase + l1" "$CNNVIZ" train -o "$TMP/f.h5" "${tiny[@]}" --epochs 1 --quiet \
  --optimizer adam --decay inverse-time --decay-rate 0.01 --staircase --decay-steps 3 --l1 0.0001
check "--keep-subnormals trains" "$CNNVIZ" train -o "$TMP/g.h5" "${tiny[@]}" --epochs 1 --quiet --keep-subnormals
check "help documents the spec" bash -c "'$CNNVIZ' train --help | grep -q 'C<filters>'"
finish
