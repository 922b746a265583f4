"""The model-randomisation sanity check of Adebayo et al. (2018), cascading,
for every `cnnviz explain` method (issue 24).

    explain_sanity.py CNNVIZ MODEL.h5 t10k-images-idx3-ubyte.gz [N]

The weights of the top layer, then of the top two, ... down to the first,
are replaced by random ones (normal, each tensor's own standard deviation,
seeded; biases too), each stage written as a copy of the .h5 with h5py.
cnnviz explains the first N test images (20), each for the class the
trained model predicts (--class), on the trained and on every randomised
copy. Printed: the mean Spearman rank correlation, over the images, of
|map| with the trained model's |map| (1: the method does not see the
randomisation; near 0: the map changed). Ties (a map's many exact zeros)
share their mean rank, so maps that are zero where the image is zero
(integrated gradients, occlusion) keep a high correlation from that alone."""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

METHODS = ["saliency", "smoothgrad", "integrated-gradients", "gradcam", "gradcam++", "scorecam", "occlusion"]


def layer_names(path):
    with h5py.File(path, "r") as f:
        mw = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in mw.attrs["layer_names"]]
        return [n for n in names if len(mw[n].attrs.get("weight_names", []))]


def randomised(path, layers, out, rng):
    shutil.copy(path, out)
    with h5py.File(out, "r+") as f:
        mw = f["model_weights"]
        for name in layers:
            for wn in mw[name].attrs["weight_names"]:
                wn = wn.decode() if isinstance(wn, bytes) else str(wn)
                d = mw[name][wn]
                sd = float(np.std(d[...])) or 0.05
                d[...] = rng.normal(0, sd, d.shape).astype(d.dtype)


def explain(cnnviz, model, images, classes, n, out):
    """maps of every method for images 0..n-1, each for its class"""
    maps = {k: [None] * n for k in METHODS}
    os.makedirs(out, exist_ok=True)
    for c in sorted(set(classes)):
        idx = [i for i in range(n) if classes[i] == c]
        d = os.path.join(out, f"c{c}")
        subprocess.run([cnnviz, "explain", model] + [f"{images}@{i}" for i in idx] +
                       ["--method", "all", "--class", str(c), "--dump", d + "/", "--quiet"], check=True)
        for k in METHODS:
            m = np.load(os.path.join(d, k + ".npy"))
            for j, i in enumerate(idx):
                maps[k][i] = m[j]
    return maps


def ranks(v):
    """ranks from 0, ties sharing their mean rank (a map's many zeros are one tie)"""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    r = np.empty(len(v))
    start = 0
    for end in np.append(np.nonzero(np.diff(sv))[0] + 1, len(v)):
        r[order[start:end]] = (start + end - 1) / 2
        start = end
    return r


def spearman(a, b):
    ra, rb = ranks(np.abs(a).ravel()), ranks(np.abs(b).ravel())
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    cnnviz, path, images = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run([cnnviz, "predict", path] + [f"{images}@{i}" for i in range(n)] + ["--json"],
                               check=True, capture_output=True, text=True).stdout
        import json
        classes = [r["class"] for r in json.loads(probe)]
        base = explain(cnnviz, path, images, classes, n, os.path.join(tmp, "trained"))
        layers = layer_names(path)
        rng = np.random.default_rng(1)
        print(f"cascading randomisation, {os.path.basename(path)}, first {n} test images, each for the class the "
              "trained model predicts: mean Spearman rank correlation of |map| with the trained model's")
        print("| randomised from the top down to | " + " | ".join(METHODS) + " |")
        print("|---" * (len(METHODS) + 1) + "|")
        for depth in range(1, len(layers) + 1):
            top = layers[-depth:]
            model = os.path.join(tmp, f"random{depth}.h5")
            randomised(path, top, model, rng)
            maps = explain(cnnviz, model, images, classes, n, os.path.join(tmp, f"r{depth}"))
            cells = []
            for k in METHODS:
                r = [spearman(base[k][i], maps[k][i]) for i in range(n)]
                cells.append(f"{np.nanmean(r):.2f}")
            print(f"| {top[0]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
