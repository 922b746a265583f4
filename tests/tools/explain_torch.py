#!/usr/bin/python3
"""An independent implementation of `cnnviz explain` in PyTorch autograd,
written from the definitions of issue 24, not from the C code.

    explain_torch.py MODEL.h5 DUMP_DIR [--tol 1e-4]

DUMP_DIR is what `cnnviz explain MODEL IMAGE... --dump DIR/` wrote: the
input as the model saw it (input.npy) and one .npy per method. The model is
rebuilt in float64 torch from the .h5 (architecture and weights read with
h5py by tests/tools/keras_h5_reader.py's loader), every method in the dump
except smoothgrad is recomputed on the same inputs and compared: the largest
difference must be at most tol times the largest |value| of the reference
map, image by image. Prints one line per method and exits 1 on a mismatch,
77 when torch, numpy or h5py cannot be imported (CTest: skipped).
"""
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e}", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras_h5_reader as kr  # noqa: E402  (exits 77 without h5py)

torch.set_default_dtype(torch.float64)


def act(x, name):
    name = name or "linear"
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x)
    if name in ("softmax", "softmax_v2"):
        return F.softmax(x, dim=-1)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "elu":
        return F.elu(x)
    raise SystemExit(f"activation {name!r} not supported")


def tf_pad(x, k, s, padding, value):
    """NHWC x padded for a TF window op (same: the smaller half first)."""
    if padding != "same":
        return x
    H, W = x.shape[1], x.shape[2]
    _, pt, pb = kr.window(H, k[0], s[0], "same")
    _, pl, pr = kr.window(W, k[1], s[1], "same")
    return F.pad(x, (0, 0, pl, pr, pt, pb), value=value)


# Per sample of the latest forward: whether a max pooling window held two
# maxima within TIE_REL of each other. Mathematically equal maxima (uniform
# patches of an 8-bit image give equal conv outputs) come out of float32
# arithmetic in either order, so which one takes the gradient is not
# determined by the definitions: such samples are counted, not compared.
TIE_REL = 1e-5
ties = None


def note_ties(y, k, s):
    global ties
    win = F.unfold(y, k, stride=s)  # (B, C*kh*kw, L)
    B, L = y.shape[0], win.shape[-1]
    win = win.reshape(B, y.shape[1], k[0] * k[1], L)
    top = win.topk(2, dim=2).values if k[0] * k[1] > 1 else None
    if top is None:
        return
    near = (top[:, :, 0] - top[:, :, 1] <= TIE_REL * top[:, :, 0].abs()) & (top[:, :, 0] != 0)
    t = near.reshape(B, -1).any(dim=1)
    ties = t if ties is None or ties.shape != t.shape else ties | t


def pool(x, c, kind):
    k = kr.pair(c.get("pool_size", 2))
    s = kr.pair(c.get("strides") or k)
    pad = c.get("padding", "valid")
    if kind == "max":
        y = tf_pad(x, k, s, pad, float("-inf")).permute(0, 3, 1, 2)
        with torch.no_grad():
            note_ties(y.nan_to_num(neginf=-1e300), k, s)
        return F.max_pool2d(y, k, s).permute(0, 2, 3, 1)
    # TF averages the real cells of a window only
    ones = torch.ones_like(x[..., :1])
    num = F.avg_pool2d(tf_pad(x, k, s, pad, 0.0).permute(0, 3, 1, 2), k, s, divisor_override=1)
    den = F.avg_pool2d(tf_pad(ones, k, s, pad, 0.0).permute(0, 3, 1, 2), k, s, divisor_override=1)
    return (num / den).permute(0, 2, 3, 1)


def layer_forward(layer, x, pre_activation=False):
    """One Keras layer on NHWC x; pre_activation: a Conv2D/Dense without its activation."""
    c, w = layer.cfg, [torch.from_numpy(v) for v in layer.weights]
    a = "linear" if pre_activation else c.get("activation")
    if layer.cls == "Conv2D":
        k = w[0]
        s = kr.pair(c.get("strides", 1))
        y = tf_pad(x, k.shape[:2], s, c.get("padding", "valid"), 0.0).permute(0, 3, 1, 2)
        y = F.conv2d(y.contiguous(), k.permute(3, 2, 0, 1).contiguous(), w[1] if len(w) > 1 else None, stride=s)
        return act(y.permute(0, 2, 3, 1), a)
    if layer.cls == "Dense":
        y = x @ w[0]
        return act(y + w[1] if len(w) > 1 else y, a)
    if layer.cls == "MaxPooling2D":
        return pool(x, c, "max")
    if layer.cls == "AveragePooling2D":
        return pool(x, c, "avg")
    if layer.cls == "Flatten":
        return x.reshape(x.shape[0], -1)
    if layer.cls == "BatchNormalization":
        i, gamma, beta = 0, None, None
        if c.get("scale", True):
            gamma, i = w[i], i + 1
        if c.get("center", True):
            beta, i = w[i], i + 1
        y = (x - w[i]) / torch.sqrt(w[i + 1] + c.get("epsilon", 1e-3))
        y = y * gamma if gamma is not None else y
        return y + beta if beta is not None else y
    if layer.cls == "Activation":
        return act(x, c["activation"])
    if layer.cls == "ReLU":
        return F.relu(x)
    if layer.cls == "Rescaling":
        return x * c.get("scale", 1.0) + c.get("offset", 0.0)
    if layer.cls in ("Dropout", "GaussianNoise", "RandomRotation", "RandomZoom", "RandomTranslation"):
        return x
    raise SystemExit(f"layer class {layer.cls!r} not supported")


class Model:
    def __init__(self, path):
        self.shape, self.layers = kr.load(path)
        last = self.layers[-1]
        # the score: the input of the final softmax
        if last.cls == "Activation" and last.cfg["activation"] in ("softmax", "softmax_v2"):
            self.n_run, self.pre = len(self.layers) - 1, False
        elif last.cfg.get("activation") in ("softmax", "softmax_v2"):
            self.n_run, self.pre = len(self.layers), True
        else:
            self.n_run, self.pre = len(self.layers), False

    def default_cam_layer(self):
        """the last Conv2D, or the Activation right after it (past a BatchNormalization)"""
        convs = [i for i, l in enumerate(self.layers[: self.n_run]) if l.cls == "Conv2D"]
        c = convs[-1]
        j = c + 1
        if j < self.n_run and self.layers[j].cls == "BatchNormalization":
            j += 1
        return j if j < self.n_run and self.layers[j].cls == "Activation" else c

    def logits(self, x, keep=None):
        """x (B, input shape) -> logits (B, K); keep: a layer whose output is returned too"""
        global ties
        ties = None
        kept = None
        for i, layer in enumerate(self.layers[: self.n_run]):
            x = layer_forward(layer, x, pre_activation=self.pre and i == self.n_run - 1)
            if i == keep:
                kept = x
        return (x, kept) if keep is not None else x


TIED = None  # samples a gradient method left out: a tie on their path


def gradients(model, x, cls):
    global TIED
    x = x.clone().requires_grad_(True)
    z = model.logits(x)
    TIED = ties
    score = z.gather(1, cls[:, None]).sum()
    (g,) = torch.autograd.grad(score, x)
    return g


def saliency(model, x, cls, o):
    return gradients(model, x, cls)


def integrated_gradients(model, x, cls, o):
    m, base = o["steps"], o["baseline"]
    t = (torch.arange(1, m + 1) / m).reshape((m, 1) + (1,) * (x.dim() - 1))
    path = base + t * (x - base)[None]  # (m, N, ...): all the steps in one pass
    g = gradients(model, path.reshape((-1,) + x.shape[1:]), cls.repeat(m)).reshape(path.shape)
    global TIED
    if TIED is not None:
        TIED = TIED.reshape(m, -1).any(dim=0)
    return (x - base) * g.sum(dim=0) / m


def cam_maps(model, x, cls, o):
    global TIED
    L = o["layer"]
    z, A = model.logits(x.clone().requires_grad_(True), keep=L)
    TIED = ties  # (ties below L count too: harmless, they only shorten the list)
    score = z.gather(1, cls[:, None]).sum()
    (g,) = torch.autograd.grad(score, A)
    return A.detach(), g


def gradcam(model, x, cls, o):
    A, g = cam_maps(model, x, cls, o)
    alpha = g.mean(dim=(1, 2), keepdim=True)
    return F.relu((alpha * A).sum(dim=3))


def gradcam_pp(model, x, cls, o):
    A, g = cam_maps(model, x, cls, o)
    g2, g3 = g ** 2, g ** 3
    den = 2 * g2 + A.sum(dim=(1, 2), keepdim=True) * g3
    alpha = torch.where(den != 0, g2 / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(den))
    w = (alpha * F.relu(g)).sum(dim=(1, 2), keepdim=True)
    return F.relu((w * A).sum(dim=3))


def scorecam(model, x, cls, o):
    _, A = model.logits(x, keep=o["layer"])
    N, h, w, K = A.shape
    H, W = x.shape[1], x.shape[2]
    up = F.interpolate(A.permute(0, 3, 1, 2), size=(H, W), mode="bilinear", align_corners=False)
    out = torch.zeros(N, h, w)
    for i in range(N):
        lo = up[i].amin(dim=(1, 2), keepdim=True)
        hi = up[i].amax(dim=(1, 2), keepdim=True)
        # a constant map is skipped (float64 bilinear of a constant varies in its last bits)
        used = (hi - lo > 1e-12 * torch.maximum(hi.abs(), lo.abs()))[:, 0, 0]
        M = ((up[i] - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi)))[used]
        s = torch.zeros(K)
        if used.any():
            s[used] = F.softmax(model.logits((x[i][None] * M[:, :, :, None]).contiguous()), dim=1)[:, cls[i]]
        out[i] = F.relu((A[i] * s).sum(dim=2))
    return out


def occlusion(model, x, cls, o):
    P, S, base = o["patch"], o["stride"], o["baseline"]
    shape = x.shape[1:]
    if x.dim() != 4:  # an MLP's 784 or 28 x 28 is a 28 x 28 x 1 picture
        side = int(round(x[0].numel() ** 0.5))
        x = x.reshape(-1, side, side, 1)
        logits = model.logits
        model = type("Picture", (), {"logits": staticmethod(lambda v: logits(v.reshape((v.shape[0],) + shape)))})
    N, H, W = x.shape[0], x.shape[1], x.shape[2]
    gh, gw = (H - P) // S + 1, (W - P) // S + 1
    score = model.logits(x).gather(1, cls[:, None])[:, 0]
    xo = x[None].repeat(gh * gw, *([1] * x.dim()))  # (positions, N, ...)
    for a in range(gh):
        for b in range(gw):
            xo[a * gw + b, :, a * S:a * S + P, b * S:b * S + P, :] = base
    z = model.logits(xo.reshape((-1,) + x.shape[1:])).reshape(gh * gw, N, -1)
    lost = score[None] - z.gather(2, cls[None, :, None].expand(gh * gw, N, 1))[:, :, 0]
    return lost.t().reshape(N, gh, gw)


GRADIENT_METHODS = (saliency, integrated_gradients, gradcam, gradcam_pp)
METHODS = {"saliency": saliency, "integrated-gradients": integrated_gradients, "gradcam": gradcam,
           "gradcam++": gradcam_pp, "scorecam": scorecam, "occlusion": occlusion}


def main():
    args = sys.argv[1:]
    tol = 1e-4
    o = {"steps": 64, "baseline": 0.0, "patch": 4, "stride": 2, "layer": None}
    while len(args) > 2 and args[-2].startswith("--"):
        key, val = args[-2][2:], args[-1]
        if key == "tol":
            tol = float(val)
        else:
            o[key] = type(o[key])(val) if o[key] is not None else int(val)
        args = args[:-2]
    if len(args) != 2:
        raise SystemExit(__doc__)
    path, dump = args
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = Model(path)
    x = torch.from_numpy(np.load(os.path.join(dump, "input.npy")).astype(np.float64))
    if len(model.shape) == 3 and x.dim() == 4:
        pass
    logits = model.logits(x)
    cls = logits.argmax(dim=1)
    if os.path.exists(os.path.join(dump, "class.npy")):
        given = torch.from_numpy(np.load(os.path.join(dump, "class.npy")).astype(np.int64))
        if not torch.equal(given, cls):
            print(f"note: the dump explains classes {given.tolist()}, the predicted ones are {cls.tolist()}")
        cls = given
    if o["layer"] is None and any(l.cls == "Conv2D" for l in model.layers):
        o["layer"] = model.default_cam_layer()
    bad = 0
    for name, fn in METHODS.items():
        f = os.path.join(dump, name + ".npy")
        if not os.path.exists(f):
            continue
        global TIED
        TIED = None
        got = torch.from_numpy(np.load(f).astype(np.float64))
        ref = fn(model, x, cls, o).detach().reshape(got.shape)
        worst, left_out = 0.0, 0
        for i in range(got.shape[0]):
            scale = ref[i].abs().max().item()
            diff = (got[i] - ref[i]).abs().max().item()
            rel = diff / scale if scale > 0 else diff
            if rel > tol and fn in GRADIENT_METHODS and TIED is not None and bool(TIED[i]):
                left_out += 1  # a gradient through a tie: either maximum is right
                continue
            worst = max(worst, rel)
        ok = worst <= tol
        bad += not ok
        compared = got.shape[0] - left_out
        bad += compared == 0
        where = f" (layer {model.layers[o['layer']].name})" if fn in (gradcam, gradcam_pp, scorecam) else ""
        print(f"{os.path.basename(path)} {name}{where}: max |cnnviz - torch| / max |torch| = {worst:.3e} "
              f"on {compared} of {got.shape[0]} images{f' ({left_out} differ and hold max-pooling ties)' if left_out else ''} "
              f"{'ok' if ok and compared else 'MISMATCH'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
