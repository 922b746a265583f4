"""cnnviz.Model against the cnnviz command: the same numbers, bit for bit, and
the same error messages. Run by tests/cli/python.sh with CNNVIZ (the command),
CNNVIZ_LIBRARY (the build's libcnnviz.so) and the source and shared folders."""
import gzip
import json
import os
import subprocess

import numpy as np
import pytest

import cnnviz

CLI = os.environ["CNNVIZ"]
SRC = os.environ["CNNVIZ_SOURCE_DIR"]
SHARED = os.environ.get("CNNVIZ_SHARED") or os.environ.get("CNNVIZ_SHARED_DEFAULT", "")
BUNDLED = os.path.join(SRC, "samples", "model.h5")
DIGITS = [os.path.join(SRC, "samples", f"digit-{k}.png") for k in range(10)]
T10K = os.path.join(SHARED, "data", "mnist", "t10k-images-idx3-ubyte.gz")
# two shared Keras models whose last layer is softmax (the command's probs
# are then the model's outputs): tf.keras 2.15 and Keras 3
SHARED_MODELS = [os.path.join(SHARED, "data", "keras", n) for n in ("tfk2_15_cnn.h5", "k3h5_cnn.h5")]


def cli_json(*args):
    out = subprocess.run([CLI, *args, "--json", "--quiet"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def cli_probs(model, inputs):
    return np.array([r["probs"] for r in cli_json("predict", model, *inputs)], dtype=np.float32)


def need(path):
    if not os.path.exists(path):
        pytest.skip(f"shared data {path} not found (set CNNVIZ_SHARED)")


def t10k_pixels(n):
    with gzip.open(T10K) as f:
        data = f.read(16 + n * 784)
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 28, 28)


def test_predict_paths_match_cli_bit_for_bit():
    m = cnnviz.Model(BUNDLED)
    got = m.predict(DIGITS, threads=2)
    want = cli_probs(BUNDLED, DIGITS)
    assert got.dtype == np.float32 and got.shape == (10, 10)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert list(got.argmax(axis=1)) == list(range(10))


@pytest.mark.parametrize("model", [BUNDLED] + SHARED_MODELS)
def test_predict_idx_pixels_match_cli(model):
    need(model)
    need(T10K)
    m = cnnviz.Model(model)
    ks = [0, 1, 7, 42, 99]
    pixels = t10k_pixels(100)
    want = cli_probs(model, [f"{T10K}@{k}" for k in ks])
    got_uint8 = m.predict(pixels, batch=32)[ks]
    assert np.array_equal(got_uint8.view(np.uint32), want.view(np.uint32))
    # one image without a batch axis, with a channel axis
    one = m.predict(pixels[7].reshape(28, 28, 1))
    assert np.array_equal(one[0].view(np.uint32), want[2].view(np.uint32))


@pytest.mark.parametrize("model", [BUNDLED] + SHARED_MODELS)
def test_summary_matches_cli(model):
    need(model)
    want = cli_json("summary", model)
    m = cnnviz.Model(model)
    assert m.summary() == want["layers"]
    assert m.num_params() == want["params"]


def test_float_input_is_taken_as_it_is():
    m = cnnviz.Model(BUNDLED)
    x = np.zeros((3, 28, 28, 1), dtype=np.float32)
    x[1, 10:18, 12:16, 0] = 1.0
    out = m.predict(x, threads=1)
    assert out.shape == (3, 10)
    assert np.array_equal(out[0], out[2]) and not np.array_equal(out[0], out[1])
    # the same as uint8 pixels scaled x/255 by the library
    px = (x * 255).astype(np.uint8)
    assert np.array_equal(m.predict(px).view(np.uint32), out.view(np.uint32))


def cli_error_line(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True)
    assert r.returncode == 1
    line = r.stderr.strip()
    assert line.startswith("cnnviz: ")
    return line[len("cnnviz: "):]


def test_bad_model_raises_the_c_message(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n this is not an HDF5 file")
    with pytest.raises(cnnviz.Error) as e:
        cnnviz.Model(bad)
    assert str(e.value) == cli_error_line("summary", str(bad))
    assert e.value.file == str(bad)
    missing = tmp_path / "missing.h5"
    with pytest.raises(cnnviz.Error) as e:
        cnnviz.Model(missing)
    assert str(e.value) == cli_error_line("summary", str(missing))


def test_bad_image_raises_the_c_message(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    m = cnnviz.Model(BUNDLED)
    with pytest.raises(cnnviz.Error) as e:
        m.predict([DIGITS[0], bad])
    assert str(e.value) == cli_error_line("predict", BUNDLED, str(bad))


@pytest.mark.parametrize("x, kind, words", [
    (np.zeros((2, 28, 28), dtype=np.float64), TypeError, "float64"),
    (np.zeros((2, 28, 28), dtype=np.int32), TypeError, "int32"),
    (np.zeros((2, 27, 28), dtype=np.uint8), ValueError, "(2, 27, 28)"),
    (np.zeros((0, 28, 28), dtype=np.uint8), ValueError, "(0, 28, 28)"),
    (np.zeros((5,), dtype=np.float32), ValueError, "(5,)"),
    ([1, 2, 3], TypeError, "list"),
])
def test_wrong_arrays_are_refused(x, kind, words):
    m = cnnviz.Model(BUNDLED)
    with pytest.raises(kind) as e:
        m.predict(x)
    assert words in str(e.value)


def test_non_contiguous_array():
    m = cnnviz.Model(BUNDLED)
    px = np.asfortranarray(np.arange(2 * 784, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8))
    assert np.array_equal(m.predict(px), m.predict(np.ascontiguousarray(px)))


def test_closed_model_and_bad_threads():
    m = cnnviz.Model(BUNDLED)
    with pytest.raises(ValueError):
        m.predict(DIGITS[:1], threads=-1)
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.predict(DIGITS[:1])
