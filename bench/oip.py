"""PyTorch side of bench/oip.sh: the gradient ascent of `cnnviz filters`
written the way a PyTorch user would, with autograd, on the same network and
weights, from the same starting images (read from bench_oip's dump).

The algorithm, step for step as src/oip/ does it with its defaults:
  objective  mean over positions of relu(z) for map m of layer L, z the
             conv's pre-activation; the gradient is that of
             mean(relu(z)) + leak * mean(min(z, 0)) (leak 0.3)
  step t     x += step * (1 - t/steps) * g / rms(g), per image (step 0.2); clip to [0, 1]
  keep       the best iterate of each image (objective measured before each
             step and once after the last)
usage: oip.py MODEL.h5 THREADS STEPS DUMP.h5 (times: best of $BENCH_REPEAT runs, default 3)"""
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from keras_torch import KerasChain

STEP, LEAK = 0.2, 0.3


def pre_activation(net, x, last):
    """Layer `last`'s output before its activation, NCHW (x is NHWC)."""
    x = x.permute(0, 3, 1, 2)
    for i, op in enumerate(net.ops[:last + 1]):
        kind = op[0]
        if kind == "conv":
            _, k, b, s, pad, act = op
            x = F.conv2d(x, k, b, stride=s, padding=0 if pad == "valid" else "same")
            if i < last and act == "relu":
                x = F.relu(x)
        elif kind == "maxpool":
            x = F.max_pool2d(x, op[1], op[2])
        elif kind == "avgpool":
            x = F.avg_pool2d(x, op[1], op[2])
        else:
            raise ValueError("bench: only conv/pool layers before the objective")
    return x


def ascend(net, last, x0, steps):
    B = x0.shape[0]
    maps = torch.arange(B)
    x = x0.clone()
    best = torch.full((B,), -float("inf"))
    best_x = x.clone()
    for t in range(steps + 1):
        x.requires_grad_(t < steps)
        z = pre_activation(net, x, last)[maps, maps].reshape(B, -1)
        value = F.relu(z).mean(1)
        if t < steps:
            surrogate = value + LEAK * z.clamp(max=0).mean(1)
            g, = torch.autograd.grad(surrogate.sum(), x)
        value = value.detach()
        better = value > best
        best = torch.where(better, value, best)
        best_x[better] = x.detach()[better]
        if t == steps:
            break
        with torch.no_grad():
            rms = g.reshape(B, -1).pow(2).mean(1).sqrt().clamp(min=1e-30).view(B, 1, 1, 1)
            x = (x.detach() + STEP * (1 - t / steps) * g / rms).clamp(0, 1)
    return best_x, best


def main():
    path, threads, steps, dump = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    repeat = max(1, int(os.environ.get("BENCH_REPEAT", "3")))
    torch.set_num_threads(threads)
    net = KerasChain(path).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    total, nmaps = 0.0, 0
    with h5py.File(dump, "r") as f:
        layers = sorted(int(k.split("_")[1]) for k in f if k.startswith("start_"))
        for L in layers:
            x0 = torch.tensor(np.array(f["start_%d" % L]))
            ref = np.array(f["activations_%d" % L])
            dt = float("inf")
            for _ in range(repeat):  # best of REPEAT, as bench_oip
                t0 = time.perf_counter()
                _, act = ascend(net, L, x0, steps)
                dt = min(dt, time.perf_counter() - t0)
            act = act.numpy()
            total += dt
            nmaps += len(act)
            print("layer=%d maps=%d seconds=%.4f mean_activation=%.6g live=%d cnnviz_mean=%.6g" %
                  (L, len(act), dt, act.mean(), (act > 0).sum(), ref.mean()))
    print("total maps=%d seconds=%.4f threads=%d steps=%d torch=%s" % (nmaps, total, threads, steps,
                                                                      torch.__version__))


if __name__ == "__main__":
    main()
