"""Deletion faithfulness of each `cnnviz explain` method (issue 24).

    explain_faithfulness.py CNNVIZ MODEL.h5 t10k-images-idx3-ubyte.gz [N]

For the first N test images (1000), cnnviz explains each image's predicted
class with every method (--dump). Each map is brought to the input's
resolution (channels summed; layer and patch grids resized by bilinear
interpolation with half-pixel centres), the pixels are ordered from the most
to the least attributed, and they are set to the baseline 0 in that order,
2% of the image at a time, until the model (PyTorch, the same weights)
predicts another class. The number is the mean fraction of the image that
had to go (lower: the map found the evidence sooner; 1 when the class never
changed), beside a random order of the same pixels (seeded)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_torch import KerasChain  # noqa: E402

METHODS = ["saliency", "smoothgrad", "integrated-gradients", "gradcam", "gradcam++", "scorecam", "occlusion"]
STEP = 0.02


def importance(name, m, H, W):
    m = torch.from_numpy(m.astype(np.float32))
    if m.dim() == 4:  # (N, H, W, C)
        return m.sum(dim=3).reshape(m.shape[0], -1)
    return F.interpolate(m[:, None], size=(H, W), mode="bilinear", align_corners=False).reshape(m.shape[0], -1)


def deletion(model, x, cls, order):
    """fraction of pixels set to 0, in `order` (N, P), until the class changes"""
    N, P = order.shape
    levels = [int(round(f * P)) for f in np.arange(STEP, 1 + 1e-9, STEP)]
    out = np.ones(N)
    flat = x.reshape(N, P)
    with torch.no_grad():
        for i in range(N):
            batch = flat[i].repeat(len(levels), 1)
            for j, k in enumerate(levels):
                batch[j, order[i, :k]] = 0
            pred = model(batch.reshape(len(levels), 28, 28, 1)).argmax(1)
            changed = (pred != cls[i]).nonzero()
            if len(changed):
                out[i] = levels[changed[0, 0]] / P
    return out


def main():
    cnnviz, path, images = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([cnnviz, "explain", path] + [f"{images}@{i}" for i in range(n)] +
                       ["--method", "all", "--dump", tmp + "/", "--quiet"], check=True)
        maps = {k: np.load(os.path.join(tmp, k + ".npy")) for k in METHODS}
        x = torch.from_numpy(np.load(os.path.join(tmp, "input.npy")))
        cls = torch.from_numpy(np.load(os.path.join(tmp, "class.npy")).astype(np.int64))
    model = KerasChain(path)
    model.eval()
    H, W = x.shape[1], x.shape[2]
    rows = []
    for k in METHODS:
        order = importance(k, maps[k], H, W).argsort(dim=1, descending=True)
        rows.append((k, deletion(model, x, cls, order)))
    g = torch.Generator().manual_seed(1)
    order = torch.stack([torch.randperm(H * W, generator=g) for _ in range(n)])
    rows.append(("random order", deletion(model, x, cls, order)))
    print(f"deletion on the first {n} test images, {os.path.basename(path)}, steps of {STEP:.0%} of the pixels "
          "set to 0 until the predicted class changes")
    print("| method | mean fraction deleted (lower is better) | median | class never changed |")
    print("|---|---|---|---|")
    for k, f in rows:
        print(f"| {k} | {f.mean():.3f} | {np.median(f):.2f} | {int((f >= 1).sum())} of {n} |")


if __name__ == "__main__":
    main()
