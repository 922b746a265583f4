"""Build a PyTorch copy of a Keras Sequential model from its .h5 (h5py only),
for the benchmarks: the same network and the same weights as cnnviz runs.

Supports what the seed network and its variants use: Conv2D (valid/same,
strides), MaxPooling2D, AveragePooling2D, Flatten, Dense, Dropout, relu/softmax.
Keras is NHWC; torch convolutions are NCHW, so kernels are permuted HWIO->OIHW
and Flatten permutes back to NHWC so the Dense weights apply unchanged."""
import json

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _attr_str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


class KerasChain(nn.Module):
    def __init__(self, path):
        super().__init__()
        with h5py.File(path, "r") as f:
            cfg = json.loads(_attr_str(f.attrs["model_config"]))
            layers = cfg["config"]["layers"] if isinstance(cfg["config"], dict) else cfg["config"]
            mw = f["model_weights"]
            self.ops = []
            self.params = nn.ParameterList()
            for L in layers:
                cls, c = L["class_name"], L["config"]
                if cls == "InputLayer":
                    continue
                w = {}
                if c["name"] in mw:
                    g = mw[c["name"]]
                    for wn in g.attrs.get("weight_names", []):
                        wn = _attr_str(wn)
                        w[wn.split("/")[-1].split(":")[0]] = np.array(g[wn])
                act = c.get("activation", "linear")
                if cls == "Conv2D":
                    k = nn.Parameter(torch.tensor(w["kernel"]).permute(3, 2, 0, 1).contiguous())
                    b = nn.Parameter(torch.tensor(w["bias"]))
                    self.params.extend([k, b])
                    self.ops.append(("conv", k, b, tuple(c["strides"]), c["padding"], act))
                elif cls in ("MaxPooling2D", "AveragePooling2D"):
                    self.ops.append(("maxpool" if cls[0] == "M" else "avgpool", tuple(c["pool_size"]),
                                     tuple(c["strides"] or c["pool_size"])))
                elif cls == "Flatten":
                    self.ops.append(("flatten",))
                elif cls == "Dense":
                    k = nn.Parameter(torch.tensor(w["kernel"]).t().contiguous())
                    b = nn.Parameter(torch.tensor(w["bias"]))
                    self.params.extend([k, b])
                    self.ops.append(("dense", k, b, act))
                elif cls == "Dropout":
                    self.ops.append(("dropout", c["rate"]))
                else:
                    raise ValueError("layer %s not supported by the benchmark" % cls)

    def forward(self, x, logits=False):  # x: (B, 28, 28, 1) NHWC
        x = x.permute(0, 3, 1, 2)
        for op in self.ops:
            if op[0] == "conv":
                _, k, b, s, pad, act = op
                x = F.conv2d(x, k, b, stride=s, padding=0 if pad == "valid" else "same")
                x = _act(x, act, logits and op is self.ops[-1])
            elif op[0] == "maxpool":
                x = F.max_pool2d(x, op[1], op[2])
            elif op[0] == "avgpool":
                x = F.avg_pool2d(x, op[1], op[2])
            elif op[0] == "flatten":
                x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            elif op[0] == "dense":
                _, k, b, act = op
                x = F.linear(x, k, b)
                x = _act(x, act, logits and op is self.ops[-1])
            elif op[0] == "dropout":
                x = F.dropout(x, op[1], self.training)
        return x


def _act(x, act, skip_softmax):
    if act == "relu":
        return F.relu(x)
    if act == "softmax":
        return x if skip_softmax else F.softmax(x, dim=1)
    if act == "linear":
        return x
    raise ValueError("activation %s not supported by the benchmark" % act)
