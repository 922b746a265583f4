#!/usr/bin/python3
"""PyTorch side of bench/train.sh: the same seed network, optimizer, batch
and thread count as bench_train, timed the same way.

Prints one line "pytorch seconds_per_epoch=S cpu_seconds_per_epoch=C
peak_rss_mb=M test_accuracy=A images=N" (CPU time and peak RSS from
getrusage, like bench_train). Run with Debian's
python3-torch: /usr/bin/python3 bench/train.py --threads 2 --epochs 1.

The network is the seed net C32k3-P2-C64k3-P2-C64k3-F-D70-D10 (96,844
parameters). PyTorch is NCHW, so the Flatten order differs from Keras'; it
does not change the work. RMSprop: rho (PyTorch's alpha) 0.9, epsilon
1e-7, no momentum, lr 0.001, the defaults bench_train trains with. The
images stay uint8 and each batch is scaled x/255 as it is drawn, as cnnviz
does, so neither side pays for a float copy of the data set.
"""
import argparse
import gzip
import os
import resource
import struct
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        ndim = magic & 0xFF
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def seed_net():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(576, 70), nn.ReLU(),
        nn.Linear(70, 10),  # softmax is inside cross_entropy
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--limit", type=int, default=0)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.environ.get("CNNVIZ_DATA", os.path.join(here, "..", "..", "shared", "data", "mnist")))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x = torch.from_numpy(read_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz")).copy())
    y = torch.from_numpy(read_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    tx = torch.from_numpy(read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")).copy())
    ty = torch.from_numpy(read_idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    if a.limit:
        x, y = x[: a.limit], y[: a.limit]
    net = seed_net()
    opt = torch.optim.RMSprop(net.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    n = x.shape[0]
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.epochs):
        order = torch.randperm(n)
        for i in range(0, n, a.batch):
            idx = order[i:i + a.batch]
            xb = x[idx].unsqueeze(1).float().div_(255.0)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xb), y[idx])
            loss.backward()
            opt.step()
    per_epoch = (time.perf_counter() - t0) / a.epochs
    cpu_per_epoch = (time.process_time() - c0) / a.epochs
    correct = 0
    with torch.no_grad():
        for i in range(0, tx.shape[0], 64):
            correct += (net(tx[i:i + 64].unsqueeze(1).float() / 255.0).argmax(1) == ty[i:i + 64]).sum().item()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("pytorch seconds_per_epoch=%.3f cpu_seconds_per_epoch=%.3f peak_rss_mb=%.1f test_accuracy=%.4f images=%d "
          "threads=%d batch=%d" % (per_epoch, cpu_per_epoch, rss, correct / tx.shape[0], n, a.threads, a.batch))


if __name__ == "__main__":
    main()
