"""PyTorch side of bench/infer.sh: the same network and weights as cnnviz.
usage: infer.py MODEL.h5 T10K-IMAGES.gz THREADS [PROBS_OUT.txt]"""
import gzip
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from keras_torch import KerasChain

path, images, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
with gzip.open(images) as f:
    raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
x = torch.tensor(raw.astype(np.float32) / 255.0)
net = KerasChain(path).eval()
best = 1e30
with torch.inference_mode():
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(0, len(x), 256):
            net(x[i:i + 256])
        best = min(best, time.perf_counter() - t0)
    lat = []
    for i in range(2000):
        xi = x[i % len(x):i % len(x) + 1]
        t0 = time.perf_counter()
        net(xi)
        lat.append(time.perf_counter() - t0)
    probs = net(x[:100]).numpy()
if len(sys.argv) > 4:  # the first 100 images' outputs, to check both run the same network
    np.savetxt(sys.argv[4], probs, fmt="%.9e")
print("threads=%d images=%d throughput=%.0f latency_us=%.1f" % (threads, len(x), len(x) / best,
                                                                 statistics.median(lat) * 1e6))
