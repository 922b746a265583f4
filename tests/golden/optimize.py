#!/usr/bin/python3
"""Recompress golden PNGs losslessly, to keep tests/golden small.

    /usr/bin/python3 tests/golden/optimize.py tests/golden/*.png

cnnviz writes PNGs with fast zlib settings (a figure in well under 100 ms);
the references kept here only need to be small. Pillow rewrites each one at
zlib level 9 with adaptive filters, as a palette image where the figure has
at most 256 colours, and the decoded pixels are checked to be unchanged, so
the checksums in render.sha256 and cli.sha256 still hold (the tests check
that each reference decodes to its checksum).
"""
import os
import sys

import numpy as np
from PIL import Image


def optimize(path):
    im = Image.open(path)
    im.load()
    rgb = im.convert("RGB")
    pixels = np.asarray(rgb)
    out = rgb
    if len(np.unique(pixels.reshape(-1, 3), axis=0)) <= 256:
        pal = rgb.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
        if np.array_equal(np.asarray(pal.convert("RGB")), pixels):
            out = pal
    tmp = path + ".tmp.png"
    out.save(tmp, optimize=True)
    if not np.array_equal(np.asarray(Image.open(tmp).convert("RGB")), pixels):
        os.unlink(tmp)
        sys.exit("%s: recompression changed the pixels; left as it was" % path)
    before = os.path.getsize(path)
    if os.path.getsize(tmp) < before:
        os.replace(tmp, path)
    else:
        os.unlink(tmp)
    return before, os.path.getsize(path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        a, b = optimize(p)
        print("%s: %d -> %d bytes" % (p, a, b))
