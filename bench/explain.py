"""PyTorch beside `cnnviz explain` (bench/explain.sh): the same model read
with h5py (bench/keras_torch.py), float32, the same thread count.

    explain.py MODEL.h5 t10k-images-idx3-ubyte.gz THREADS [N]
        saliency and Grad-CAM (last Conv2D) of each image's predicted class
        over the first N test images in batches of 256, best of 3; prints
        wall and CPU seconds
    explain.py --one MODEL.h5 INPUT.npy THREADS
        every method for one image (the input as cnnviz took it), as a whole
        process would: for timing the process from outside"""
import gzip
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __import__("os").path.dirname(__file__))
from keras_torch import KerasChain, _act  # noqa: E402


def run(model, x, keep=None):
    """logits, and the output of op `keep` (the CAM layer)"""
    x = x.permute(0, 3, 1, 2)
    kept = None
    for i, op in enumerate(model.ops):
        last = i == len(model.ops) - 1
        if op[0] == "conv":
            _, k, b, s, pad, act = op
            x = _act(F.conv2d(x, k, b, stride=s, padding=0 if pad == "valid" else "same"), act, last)
        elif op[0] == "maxpool":
            x = F.max_pool2d(x, op[1], op[2])
        elif op[0] == "avgpool":
            x = F.avg_pool2d(x, op[1], op[2])
        elif op[0] == "flatten":
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        elif op[0] == "dense":
            _, k, b, act = op
            x = _act(F.linear(x, k, b), act, last)
        if i == keep:
            kept = x
    return x, kept


def last_conv(model):
    return max(i for i, op in enumerate(model.ops) if op[0] == "conv")


def saliency(model, x, cls):
    x = x.clone().requires_grad_(True)
    z, _ = run(model, x)
    (g,) = torch.autograd.grad(z.gather(1, cls[:, None]).sum(), x)
    return g


def gradcam(model, x, cls, L):
    z, A = run(model, x.clone().requires_grad_(True), keep=L)
    (g,) = torch.autograd.grad(z.gather(1, cls[:, None]).sum(), A)
    return F.relu((g.mean(dim=(2, 3), keepdim=True) * A).sum(dim=1))


def best_of_3(fn, batches):
    best, cpu = 1e30, 0.0
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        for xb, cb in batches:
            fn(xb, cb)
        t = time.perf_counter() - t0
        if t < best:
            best, cpu = t, time.process_time() - c0
    return best, cpu


def bench_set(path, images, threads, n):
    torch.set_num_threads(threads)
    model = KerasChain(path)
    for p in model.params:
        p.requires_grad_(False)
    with gzip.open(images) if images.endswith(".gz") else open(images, "rb") as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
    x = torch.from_numpy(raw[:n].astype(np.float32) / 255.0)
    with torch.no_grad():
        cls = torch.cat([run(model, x[i:i + 256])[0].argmax(1) for i in range(0, len(x), 256)])
    batches = [(x[i:i + 256], cls[i:i + 256]) for i in range(0, len(x), 256)]
    L = last_conv(model)
    sal, sal_cpu = best_of_3(lambda xb, cb: saliency(model, xb, cb), batches)
    cam, cam_cpu = best_of_3(lambda xb, cb: gradcam(model, xb, cb, L), batches)
    print(f"threads={torch.get_num_threads()} images={len(x)} saliency_s={sal:.4f} saliency_cpu_s={sal_cpu:.4f} "
          f"gradcam_s={cam:.4f} gradcam_cpu_s={cam_cpu:.4f}")


def one(path, npy, threads):
    """every method for one image, the defaults of issue 24"""
    torch.set_num_threads(threads)
    model = KerasChain(path)
    for p in model.params:
        p.requires_grad_(False)
    x = torch.from_numpy(np.load(npy).astype(np.float32)).reshape(1, 28, 28, 1)
    z, _ = run(model, x)
    cls = z.argmax(1)
    L = last_conv(model)
    saliency(model, x, cls)
    noisy = x + 0.15 * (x.max() - x.min()) * torch.randn(20, 28, 28, 1)
    saliency(model, noisy, cls.repeat(20)).mean(0)
    t = (torch.arange(1, 65) / 64.0).reshape(64, 1, 1, 1)
    (x * saliency(model, t * x, cls.repeat(64)).mean(0)).sum()
    gradcam(model, x, cls, L)
    _, A = run(model, x, keep=L)
    A = A.detach()
    up = F.interpolate(A, size=(28, 28), mode="bilinear", align_corners=False)[0]
    lo, hi = up.amin(dim=(1, 2), keepdim=True), up.amax(dim=(1, 2), keepdim=True)
    M = (up - lo) / (hi - lo).clamp_min(1e-12)
    with torch.no_grad():
        s = F.softmax(run(model, x[0] * M[:, :, :, None])[0], 1)[:, cls[0]]
        F.relu((s[:, None, None] * A[0]).sum(0))
        occluded = x.repeat(169, 1, 1, 1)
        for k in range(169):
            a, b = k // 13 * 2, k % 13 * 2
            occluded[k, a:a + 4, b:b + 4] = 0
        z[0, cls[0]] - run(model, occluded)[0][:, cls[0]]


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        bench_set(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 10000)
