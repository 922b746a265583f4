#!/usr/bin/python3
"""PyTorch side of bench/seeds.sh: the default `cnnviz train` recipe written
the way Keras defines it, trained once per seed, printing the test accuracy
after every epoch, so the spread over seeds of an independent implementation
stands beside cnnviz's.

Keras' definitions, not PyTorch's defaults: glorot_uniform kernels and zero
biases (PyTorch starts from kaiming_uniform(a=sqrt(5)) and random biases),
Keras' RMSprop w -= lr*g/sqrt(v+eps) with rho 0.9 and eps 1e-7 (PyTorch
divides by sqrt(v)+eps), lr 0.001, batch 64 with the last partial batch
kept, a new shuffle each epoch, pixels x/255. --momentum, --l2 and
--decay-rate give the articles' best recipe: Keras' momentum m = mu*m +
lr*g/sqrt(v+eps), w -= m; l2*sum(w^2) on the Dense kernels added to the
loss; InverseTimeDecay lr0/(1+rate*step) stepped per batch. The seed seeds torch's own
generator: the same recipe and seed number as cnnviz, not the same draws.

Prints one line per seed: "seed=S acc=A1,A2,...,AE" (test accuracy after
each epoch). Run with Debian's python3-torch:
/usr/bin/python3 bench/seeds.py --seeds 1-10 --epochs 5 --threads 1
"""
import argparse
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import read_idx, seed_net  # noqa: E402  (the same network as bench/train.py)


def seed_range(text):
    lo, _, hi = text.partition("-")
    return range(int(lo), int(hi or lo) + 1)


def keras_init(net):
    for mod in net.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(mod.weight)  # Keras' glorot_uniform: the same fans for OIHW
            nn.init.zeros_(mod.bias)


def accuracy(net, tx, ty):
    correct = 0
    with torch.no_grad():
        for i in range(0, tx.shape[0], 500):
            xb = tx[i:i + 500].unsqueeze(1).float().div_(255.0)
            correct += (net(xb).argmax(1) == ty[i:i + 500]).sum().item()
    return correct / tx.shape[0]


def train_one(seed, a, x, y, tx, ty):
    torch.manual_seed(seed)
    net = seed_net()
    keras_init(net)
    params = list(net.parameters())
    v = [torch.zeros_like(p) for p in params]
    mom = [torch.zeros_like(p) for p in params]
    dense_kernels = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    n, accs, step = x.shape[0], [], 0
    for _ in range(a.epochs):
        order = torch.randperm(n)
        for i in range(0, n, a.batch):
            idx = order[i:i + a.batch]
            xb = x[idx].unsqueeze(1).float().div_(255.0)
            for p in params:
                p.grad = None
            loss = nn.functional.cross_entropy(net(xb), y[idx])
            if a.l2:
                loss = loss + a.l2 * sum(k.square().sum() for k in dense_kernels)  # Keras' L2: not halved
            loss.backward()
            lr = a.lr / (1.0 + a.decay_rate * step)  # InverseTimeDecay, decay_steps 1, step before the update
            step += 1
            with torch.no_grad():
                for p, s, m in zip(params, v, mom):
                    s.mul_(a.rho).addcmul_(p.grad, p.grad, value=1.0 - a.rho)
                    root = s.add(a.epsilon).sqrt_()
                    if a.momentum:
                        p.sub_(m.mul_(a.momentum).addcdiv_(p.grad, root, value=lr))
                    else:
                        p.addcdiv_(p.grad, root, value=-lr)
        accs.append(accuracy(net, tx, ty))
    return accs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=seed_range, default=seed_range("1-10"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--rho", type=float, default=0.9)
    ap.add_argument("--epsilon", type=float, default=1e-7)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--l2", type=float, default=0.0, help="L2 on the Dense kernels")
    ap.add_argument("--decay-rate", type=float, default=0.0, help="InverseTimeDecay rate per step")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.environ.get("CNNVIZ_DATA", os.path.join(here, "..", "..", "shared", "data", "mnist")))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = torch.from_numpy(read_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz")).copy())
    y = torch.from_numpy(read_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz")).astype("int64"))
    tx = torch.from_numpy(read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")).copy())
    ty = torch.from_numpy(read_idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")).astype("int64"))
    for seed in a.seeds:
        accs = train_one(seed, a, x, y, tx, ty)
        print("seed=%d acc=%s" % (seed, ",".join("%.4f" % t for t in accs)), flush=True)


if __name__ == "__main__":
    main()
