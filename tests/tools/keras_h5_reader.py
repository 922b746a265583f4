#!/usr/bin/python3
"""Independent reader for Keras legacy .h5 model files: numpy + h5py only.

Written from Keras' own loading rules (keras/src/legacy/saving/
legacy_h5_format.py load_model_from_hdf5 / load_weights_from_hdf5_group),
not from cnnviz: the architecture comes from the model_config root attribute,
the weights from model_weights/<layer>/<weight_names[i]>, and the saved layers
that have weights are paired BY ORDER with the config's layers that have
weights, tensor i of a layer to the layer's i-th variable. The forward pass
runs in float64 so the float32 C code is checked against something more
precise than itself.

    keras_h5_reader.py MODEL.h5 INPUT [--dump DIR]

INPUT is a .npy of one sample (model input shape without the batch axis) or
a raw little-endian float32 file holding N whole samples. Prints one line per
sample, the last layer's outputs as %.9e; --dump writes NN_<layer>.npy of
every layer's output for the first sample. Exits 77 when numpy or h5py is
missing (CTest: skipped), 1 on a model it cannot read.
"""
import json
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e}", file=sys.stderr)
    sys.exit(77)


def strings(attr):
    """layer_names / weight_names: fixed or variable-length strings, or an
    empty float64 array for a layer without weights."""
    return [s.decode("utf8") if isinstance(s, bytes) else str(s) for s in attr]


def read_attr_list(group, name):
    """Keras splits big attributes into name0, name1, ..."""
    if name in group.attrs:
        return strings(group.attrs[name])
    out, k = [], 0
    while f"{name}{k}" in group.attrs:
        out += strings(group.attrs[f"{name}{k}"])
        k += 1
    return out


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def window(n, k, s, padding):
    """TF output size and leading pad (same: pad total split small half first)."""
    if padding == "same":
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        return out, total // 2, total - total // 2
    return (n - k) // s + 1, 0, 0


def activation(x, name):
    name = name or "linear"
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name in ("softmax", "softmax_v2"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    raise SystemExit(f"activation {name!r} not supported by this reader")


def patches(x, kh, kw, sh, sw, padding, fill):
    """x (B,H,W,C) -> windows (B,OH,OW,kh,kw,C) with TF 'same' padding."""
    B, H, W, C = x.shape
    oh, pt, pb = window(H, kh, sh, padding)
    ow, pl, pr = window(W, kw, sw, padding)
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # (B,H',W',C,kh,kw)
    v = v[:, ::sh, ::sw][:, :oh, :ow]
    return v.transpose(0, 1, 2, 4, 5, 3), (pt, pb, pl, pr)


def pool(x, cfg, kind):
    ph, pw = pair(cfg.get("pool_size", 2))
    strides = cfg.get("strides") or (ph, pw)
    sh, sw = pair(strides)
    padding = cfg.get("padding", "valid")
    if kind == "max":
        v, _ = patches(x, ph, pw, sh, sw, padding, -np.inf)
        return v.max(axis=(3, 4))
    # average over the window's real (unpadded) cells, as TF does
    v, _ = patches(x, ph, pw, sh, sw, padding, np.nan)
    return np.nanmean(v, axis=(3, 4))


class Layer:
    def __init__(self, cls, cfg):
        self.cls, self.cfg, self.name = cls, cfg, cfg.get("name")
        self.weights = []

    def n_weights(self):
        c = self.cfg
        if self.cls in ("Conv2D", "Dense"):
            return 2 if c.get("use_bias", True) else 1
        if self.cls == "BatchNormalization":
            return 2 + int(c.get("scale", True)) + int(c.get("center", True))
        return 0

    def forward(self, x):
        c, w = self.cfg, self.weights
        if self.cls == "Conv2D":
            k = w[0]
            kh, kw, _, f = k.shape
            sh, sw = pair(c.get("strides", 1))
            v, _ = patches(x, kh, kw, sh, sw, c.get("padding", "valid"), 0.0)
            y = np.tensordot(v, k, axes=([3, 4, 5], [0, 1, 2]))
            if len(w) > 1:
                y = y + w[1]
            return activation(y, c.get("activation"))
        if self.cls == "Dense":
            y = x @ w[0]
            if len(w) > 1:
                y = y + w[1]
            return activation(y, c.get("activation"))
        if self.cls == "MaxPooling2D":
            return pool(x, c, "max")
        if self.cls == "AveragePooling2D":
            return pool(x, c, "avg")
        if self.cls == "Flatten":
            return x.reshape(x.shape[0], -1)
        if self.cls == "Reshape":
            return x.reshape((x.shape[0],) + tuple(c["target_shape"]))
        if self.cls == "BatchNormalization":
            i = 0
            gamma = beta = None
            if c.get("scale", True):
                gamma, i = w[i], i + 1
            if c.get("center", True):
                beta, i = w[i], i + 1
            mean, var = w[i], w[i + 1]
            y = (x - mean) / np.sqrt(var + c.get("epsilon", 1e-3))
            if gamma is not None:
                y = y * gamma
            if beta is not None:
                y = y + beta
            return y
        if self.cls == "Activation":
            return activation(x, c["activation"])
        if self.cls == "ReLU":
            s = c.get("negative_slope", 0.0) or 0.0
            return np.where(x > 0, x, s * x)
        if self.cls == "LeakyReLU":
            s = c.get("negative_slope", c.get("alpha", 0.3))
            return np.where(x > 0, x, s * x)
        if self.cls == "ELU":
            return np.where(x > 0, x, c.get("alpha", 1.0) * np.expm1(np.minimum(x, 0)))
        if self.cls == "Softmax":
            return activation(x, "softmax")
        if self.cls == "Rescaling":
            return x * c.get("scale", 1.0) + c.get("offset", 0.0)
        if self.cls in ("Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "RandomRotation",
                        "RandomZoom", "RandomTranslation", "RandomContrast", "ActivityRegularization"):
            return x  # training-only behaviour
        raise SystemExit(f"layer class {self.cls!r} not supported by this reader")


def load(path):
    with h5py.File(path, "r") as f:
        config = f.attrs["model_config"]
        config = json.loads(config.decode("utf8") if isinstance(config, bytes) else config)
        if config["class_name"] != "Sequential":
            raise SystemExit("only Sequential models")
        entries = config["config"]
        if isinstance(entries, dict):
            entries = entries["layers"]
        first = entries[0]["config"]
        shape = first.get("batch_input_shape") or first.get("batch_shape")
        layers = [Layer(e["class_name"], e["config"]) for e in entries if e["class_name"] != "InputLayer"]
        mw = f["model_weights"]
        saved = [(n, read_attr_list(mw[n], "weight_names")) for n in read_attr_list(mw, "layer_names")]
        saved = [(n, wn) for n, wn in saved if wn]
        with_weights = [l for l in layers if l.n_weights()]
        if len(saved) != len(with_weights):
            raise SystemExit(f"{len(saved)} saved layers with weights, config has {len(with_weights)}")
        for layer, (name, wn) in zip(with_weights, saved):
            if len(wn) != layer.n_weights():
                raise SystemExit(f"layer {layer.name}: {len(wn)} tensors, expected {layer.n_weights()}")
            layer.weights = [np.asarray(mw[name][w], dtype=np.float64) for w in wn]
    return tuple(shape[1:]), layers


def main():
    args = sys.argv[1:]
    dump = None
    if "--dump" in args:
        i = args.index("--dump")
        dump = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        raise SystemExit(__doc__)
    shape, layers = load(args[0])
    if args[1].endswith(".npy"):
        x = np.load(args[1]).astype(np.float64).reshape((1,) + shape)
    else:
        x = np.fromfile(args[1], dtype="<f4").astype(np.float64).reshape((-1,) + shape)
    for i, layer in enumerate(layers):
        x = layer.forward(x)
        if dump:
            np.save(f"{dump}/{i:02d}_{layer.name}.npy", x[0].astype(np.float32))
    for row in x.reshape(x.shape[0], -1):
        print(" ".join("%.9e" % v for v in row))


if __name__ == "__main__":
    main()
