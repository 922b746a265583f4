#!/usr/bin/env python3
"""Make hostile Keras model files (issue 21) from a good legacy .h5.

Usage: make_hostile.py MODEL.h5 OUTDIR

Writes into OUTDIR one file per attack and EXPECTED.tsv: each line
"file<TAB>extended regex" that cnnviz's one-line refusal must match. Run at
test time (tests/cli/hostile.sh), so no binary file is committed. Needs
h5py and numpy (Debian: python3-h5py).

MODEL.h5 is expected to be samples/model.h5: a tf.keras 2.x file whose
weights are model_weights/<layer>/<layer>/{kernel,bias}:0 and whose config
has Conv2D layers and Dense layers named dense and dense_1.
"""
import json
import os
import shutil
import struct
import sys
import warnings
import zipfile

import h5py
import numpy as np

SRC, OUT = sys.argv[1], sys.argv[2]
EXPECT = []


def copy(name):
    path = os.path.join(OUT, name)
    shutil.copyfile(SRC, path)
    return path


def expect(name, pattern):
    EXPECT.append((name, pattern))


def config_of(path):
    with h5py.File(path, "r") as f:
        c = f.attrs["model_config"]
    return json.loads(c.decode() if isinstance(c, bytes) else c)


def set_config(path, cfg, text=None):
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = text if text is not None else json.dumps(cfg)


def layers(cfg):
    return cfg["config"]["layers"]


def layer_cfg(cfg, name):
    return next(l for l in layers(cfg) if l["config"].get("name") == name)["config"]


KERNEL = "model_weights/dense/dense/kernel:0"
BIAS = "model_weights/dense/dense/bias:0"


def soft_link():
    p = copy("soft_link.h5")
    with h5py.File(p, "r+") as f:
        f.move(KERNEL, "stash_kernel")
        f[KERNEL] = h5py.SoftLink("/stash_kernel")
    expect("soft_link.h5", "soft link, refused")


def external_link_to_group():
    donor = copy("donor.h5")
    p = copy("extlink_group.h5")
    with h5py.File(p, "r+") as f:
        del f["model_weights/dense"]
        f["model_weights/dense"] = h5py.ExternalLink(os.path.basename(donor), "/model_weights/dense")
    expect("extlink_group.h5", "group of layer 'dense' is an external link into another file, refused")


def external_storage_relative():
    p = copy("ext_storage_relative.h5")
    data = np.full((576, 70), 0.5, dtype="<f4")
    with open(os.path.join(OUT, "stolen.bin"), "wb") as g:
        g.write(data.tobytes())
    with h5py.File(p, "r+") as f:
        del f[KERNEL]
        f.create_dataset(KERNEL, shape=data.shape, dtype="<f4", external=[("stolen.bin", 0, data.nbytes)])
    expect("ext_storage_relative.h5", "external storage in 'stolen.bin', refused")


def vds_missing_source():
    p = copy("vds_missing_source.h5")
    with h5py.File(p, "r+") as f:
        del f[BIAS]
        layout = h5py.VirtualLayout(shape=(70,), dtype="f4")
        layout[:] = h5py.VirtualSource("missing_source.h5", "data", shape=(70,))
        f.create_virtual_dataset(BIAS, layout, fillvalue=0)
    expect("vds_missing_source.h5", "virtual dataset .*refused")


def declared_284m_params():
    # 576 inputs x 493,000 units: 284 M weights declared in a small file
    p = copy("params_284m.h5")
    cfg = config_of(p)
    layer_cfg(cfg, "dense")["units"] = 493000
    set_config(p, cfg)
    expect("params_284m.h5", "layer 'dense' \\(Dense\\) has 284461000 weights.*over the limit of 33554432")


def deflate_bomb_chunk():
    # a 70-float bias stored in one 128 MiB chunk of zeros, deflated to
    # about 130 KB: reading it would inflate the whole chunk
    p = copy("deflate_bomb.h5")
    with h5py.File(p, "r+") as f:
        del f[BIAS]
        d = f.create_dataset(BIAS, shape=(70,), maxshape=(None,), chunks=(1 << 25,), dtype="f4",
                             compression="gzip", compression_opts=9)
        d[:] = np.zeros(70, dtype="f4")
    expect("deflate_bomb.h5", "chunks larger than the tensor")


def lzf_like_unknown_filter():
    # an unregistered filter id: libhdf5 would look for it in its plugins
    p = copy("unknown_filter.h5")
    with h5py.File(p, "r+") as f:
        del f[BIAS]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((70,))
        dcpl.set_filter(32015, h5py.h5z.FLAG_OPTIONAL, ())
        space = h5py.h5s.create_simple((70,))
        d = h5py.h5d.create(f["model_weights/dense/dense"].id, b"bias:0", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        # a chunk stored as filtered (mask 0), so reading it needs the filter
        d.write_direct_chunk((0,), bytes(280), 0)
    expect("unknown_filter.h5", "HDF5 filter 32015 \\(Zstandard\\), which Keras files do not use")


def deep_json():
    p = copy("deep_json.h5")
    cfg = config_of(p)
    deep = 0
    for _ in range(200):
        deep = [deep]
    layer_cfg(cfg, "dense")["extra"] = deep
    set_config(p, cfg)
    expect("deep_json.h5", "nests deeper than the limit of 64 levels")


def huge_config_attribute():
    # a variable-length string lives in the global heap: no 64 KiB limit
    p = copy("config_5mb.h5")
    set_config(p, None, json.dumps(config_of(p)) + " " * (5 << 20))
    expect("config_5mb.h5", "the model_config attribute is over the limit of 4194304 bytes")


def conv_overflow():
    p = copy("conv_k46341.h5")
    cfg = config_of(p)
    layer_cfg(cfg, "conv2d")["kernel_size"] = [46341, 46341]
    layer_cfg(cfg, "conv2d")["padding"] = "same"
    set_config(p, cfg)
    expect("conv_k46341.h5", "conv2d with a 46341x46341 kernel .* is too large")
    p = copy("conv_filters_huge.h5")
    cfg = config_of(p)
    layer_cfg(cfg, "conv2d")["filters"] = 1000000000
    set_config(p, cfg)
    expect("conv_filters_huge.h5", "'filters' 1000000000 is over the limit")
    p = copy("conv_37777.h5")
    cfg = config_of(p)
    layer_cfg(cfg, "conv2d_2")["filters"] = 37777
    set_config(p, cfg)
    expect("conv_37777.h5", "layer 'dense' \\(Dense\\) has .* weights.*over the limit")


def keras_zip(name, members, weights_h5=None):
    path = os.path.join(OUT, name)
    with zipfile.ZipFile(path, "w") as z:
        for member, data, deflate in members:
            z.writestr(member, data, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return path


def keras3_config(n_dropouts, named=True):
    ls = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "input"}}]
    for i in range(n_dropouts):
        c = {"rate": 0.1}
        if named:
            c["name"] = "d%d" % i
        ls.append({"class_name": "Dropout", "config": c})
    return {"class_name": "Sequential", "config": {"name": "s", "layers": ls}}


def empty_weights_h5():
    path = os.path.join(OUT, "empty.weights.h5")
    with h5py.File(path, "w") as f:
        f.create_group("layers")
    with open(path, "rb") as g:
        return g.read()


def zips():
    weights = empty_weights_h5()
    meta = json.dumps({"keras_version": "3.5.0"})
    cfg = json.dumps(keras3_config(2))
    keras_zip("dup_config.keras", [("metadata.json", meta, 0), ("config.json", cfg, 0),
                                   ("config.json", cfg, 0), ("model.weights.h5", weights, 0)])
    expect("dup_config.keras", "holds config.json more than once, refused")
    keras_zip("unnamed_3000.keras", [("metadata.json", meta, 0),
                                     ("config.json", json.dumps(keras3_config(3000, named=False)), 1),
                                     ("model.weights.h5", weights, 0)])
    expect("unnamed_3000.keras", "3001 layers, over the limit of 512")
    # 5 MB of whitespace in config.json, deflated to a few KB
    keras_zip("whitespace_config.keras", [("metadata.json", meta, 0),
                                          ("config.json", cfg + " " * (5 << 20), 1),
                                          ("model.weights.h5", weights, 0)])
    expect("whitespace_config.keras", "config.json in the .keras archive is [0-9]+ bytes, over the limit")
    # 3 MB of spaces in metadata.json: within its size budget, not its ratio
    keras_zip("ratio_metadata.keras", [("metadata.json", meta + " " * (3 << 20), 1), ("config.json", cfg, 0),
                                       ("model.weights.h5", weights, 0)])
    expect("ratio_metadata.keras", "metadata.json in the .keras archive expands [0-9]+ times")
    # a model.weights.h5 that declares 2 GiB: the sizes in both headers are
    # rewritten after writing 64 KiB, so nothing big is ever made
    path = keras_zip("weights_2gb.keras", [("metadata.json", meta, 0), ("config.json", cfg, 0),
                                           ("model.weights.h5", b"\0" * 65536, 1)])
    patch_size(path, b"model.weights.h5", 0x80000000)
    expect("weights_2gb.keras", "model.weights.h5 in the .keras archive is 2147483648 bytes, over the limit")
    os.remove(os.path.join(OUT, "empty.weights.h5"))


def patch_size(path, member, size):
    """Set the uncompressed size of member in its local header and in the
    central directory (offsets from the zip specification, APPNOTE 4.3.7
    and 4.3.12)."""
    data = bytearray(open(path, "rb").read())
    pos = 0
    while True:
        pos = data.find(b"PK\x03\x04", pos)
        if pos < 0:
            break
        nlen = struct.unpack_from("<H", data, pos + 26)[0]
        if data[pos + 30:pos + 30 + nlen] == member:
            struct.pack_into("<I", data, pos + 22, size)
        pos += 4
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        nlen = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + nlen] == member:
            struct.pack_into("<I", data, pos + 24, size)
        pos += 4
    open(path, "wb").write(bytes(data))


def main():
    warnings.filterwarnings("ignore", "Duplicate name")  # dup_config.keras is meant to have one
    os.makedirs(OUT, exist_ok=True)
    for make in (soft_link, external_link_to_group, external_storage_relative, vds_missing_source,
                 declared_284m_params, deflate_bomb_chunk, lzf_like_unknown_filter, deep_json, huge_config_attribute,
                 conv_overflow, zips):
        make()
    with open(os.path.join(OUT, "EXPECTED.tsv"), "w") as f:
        for name, pattern in EXPECT:
            f.write("%s\t%s\n" % (name, pattern))


main()
