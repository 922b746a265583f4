#!/usr/bin/python3
"""bench/activations.py: the matplotlib side of bench/activations.sh.

Draws the figure `cnnviz activations` draws, from the same numbers (the
activations dump `cnnviz activations --dump acts.h5` writes): the input, a
grid of maps with index titles and a colorbar per conv/pooling layer (one
range per layer, gray, nearest-neighbour pixels), Dense layers as a strip and
the probabilities as a bar chart, saved as PNG at 100 dpi.

    /usr/bin/python3 bench/activations.py ACTS.h5 OUT.png

Prints "import_s=... figure_s=..." (imports, then building and saving the
figure) so the shell script can report both.
"""
import sys
import time

t0 = time.perf_counter()
import math  # noqa: E402

import h5py  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

t1 = time.perf_counter()


def main(path, out):
    with h5py.File(path, "r") as f:
        names = list(f.keys())
        data = {n: f[n][...] for n in names}
    x = data.pop("input")
    layers = [n for n in names if n != "input"]
    # the file lists datasets alphabetically; keep the model's order by size
    layers.sort(key=lambda n: -data[n].size)
    probs = layers.pop() if data[layers[-1]].ndim == 1 else None

    # rows of the outer grid: input, each layer, probabilities
    blocks = [("input", x.reshape(28, 28, 1) if x.ndim == 1 else x)]
    blocks += [(n, data[n]) for n in layers]
    heights = []
    for _, a in blocks:
        if a.ndim == 3:
            n = a.shape[2]
            cols = max(1, math.ceil(math.sqrt(n)))
            heights.append(math.ceil(n / cols) * 0.8 + 0.4)
        else:
            heights.append(0.9)
    if probs is not None:
        heights.append(1.8)
    fig = plt.figure(figsize=(8, sum(heights)), dpi=100)
    # a tall figure: matplotlib's default margins (12% at the top) would waste inches
    outer = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.35, top=0.99, bottom=0.01,
                             left=0.03, right=0.92)
    for row, (name, a) in enumerate(blocks):
        lo, hi = float(a.min()), float(a.max())
        if a.ndim == 3:
            n = a.shape[2]
            cols = max(1, math.ceil(math.sqrt(n)))
            rows = math.ceil(n / cols)
            g = outer[row].subgridspec(rows, cols + 1, wspace=0.08, hspace=0.3,
                                       width_ratios=[1] * cols + [0.15])
            im = None
            for k in range(n):
                ax = fig.add_subplot(g[k // cols, k % cols])
                im = ax.imshow(a[:, :, k], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
                ax.set_title(str(k), fontsize=6, pad=1)
                ax.set_xticks([])
                ax.set_yticks([])
            cax = fig.add_subplot(g[:, cols])
            fig.colorbar(im, cax=cax)
            cax.tick_params(labelsize=6)
            fig.text(0.01, outer[row].get_position(fig).y1 + 0.002,
                     "%s %s  values %.3g - %.3g" % (name, a.shape, lo, hi), fontsize=8, weight="bold")
        else:
            ax = fig.add_subplot(outer[row])
            im = ax.imshow(a.reshape(1, -1), cmap="gray", vmin=lo, vmax=hi, aspect="auto",
                           interpolation="nearest")
            ax.set_yticks([])
            ax.set_title("%s %s" % (name, a.shape), fontsize=8, loc="left")
            fig.colorbar(im, ax=ax)
    if probs is not None:
        p = data[probs]
        ax = fig.add_subplot(outer[len(blocks)])
        k = int(np.argmax(p))
        colors = ["C1" if i == k else "C0" for i in range(len(p))]
        ax.bar(range(len(p)), p, color=colors)
        for i, v in enumerate(p):
            ax.text(i, v + 0.02, "%.2f" % v, ha="center", fontsize=6)
        ax.set_xticks(range(len(p)))
        ax.set_ylim(0, 1.1)
        ax.set_title("%s: predicted %d (p = %.3f)" % (probs, k, p[k]), fontsize=8, loc="left")
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    t2 = time.perf_counter()
    print("import_s=%.4f figure_s=%.4f" % (t1 - t0, t2 - t1))
