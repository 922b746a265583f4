"""cnnviz from Python: ctypes over libcnnviz.so, nothing to compile.

Arrays are allocated by Python (numpy) and filled by the C library; no memory
whose owner is C is handed to Python except the model handle, which Model
frees. Errors raise cnnviz.Error with the library's one-line message.

    import cnnviz
    m = cnnviz.Model("model.h5")
    probs = m.predict(["digit-7.png"])     # or uint8 / float32 arrays

Bound so far: model loading, summary, input/output shapes and input scale,
predict. Not yet: evaluate, activations, filters, kernels, train, figures.
"""
import ctypes
import os

import numpy as np

__all__ = ["Error", "Model", "library_path"]

SOVERSION = 0


class Error(Exception):
    """A failure the C library reported: str(e) is "FILE: problem" as the
    cnnviz command prints it after "cnnviz: "; .file, .problem and .status
    are its parts."""

    def __init__(self, status, file, problem):
        self.status, self.file, self.problem = status, file, problem
        super().__init__(f"{file}: {problem}" if file else problem)


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("file", ctypes.c_char * 512), ("msg", ctypes.c_char * 1024)]


class _Shape(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int), ("dim", ctypes.c_int * 4)]

    def tuple(self):
        return tuple(self.dim[i] for i in range(self.rank))


class _Scale(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("mean", ctypes.c_float), ("std", ctypes.c_float)]


class _LayerInfo(ctypes.Structure):
    _fields_ = [
        ("index", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("class_name", ctypes.c_char_p),
        ("type", ctypes.c_int),
        ("input_shape", _Shape),
        ("output_shape", _Shape),
        ("params", ctypes.c_size_t),
        ("nparam", ctypes.c_int),
        ("param", ctypes.c_void_p),
        ("activation", ctypes.c_int),
    ]


def library_path():
    """Where libcnnviz is loaded from: $CNNVIZ_LIBRARY, else the dynamic
    loader's search (LD_LIBRARY_PATH, ld.so.cache), else /usr/local/lib
    (an install before ldconfig ran)."""
    env = os.environ.get("CNNVIZ_LIBRARY")
    if env:
        return env
    name = f"libcnnviz.so.{SOVERSION}"
    try:
        ctypes.CDLL(name)
        return name
    except OSError:
        return os.path.join("/usr/local/lib", name)


def _load_library():
    lib = ctypes.CDLL(library_path())
    P, E = ctypes.c_void_p, ctypes.POINTER(_Error)
    sigs = {
        "cnnviz_model_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(P), E]),
        "cnnviz_model_free": (None, [P]),
        "cnnviz_model_num_layers": (ctypes.c_int, [P]),
        "cnnviz_model_layer_info": (None, [P, ctypes.c_int, ctypes.POINTER(_LayerInfo)]),
        "cnnviz_model_num_params": (ctypes.c_size_t, [P]),
        "cnnviz_model_input_shape": (_Shape, [P]),
        "cnnviz_model_output_shape": (_Shape, [P]),
        "cnnviz_model_input_scale": (_Scale, [P]),
        "cnnviz_model_predict": (ctypes.c_int, [P, P, ctypes.c_int, ctypes.c_int, P, E]),
        "cnnviz_scale_pixels": (None, [P, P, ctypes.c_size_t, _Scale]),
        "cnnviz_image_load_digit": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, P, P, E]),
        "cnnviz_set_threads": (None, [ctypes.c_int]),
        "cnnviz_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


_lib = _load_library()


def _check(status, err):
    if status != 0:
        msg = err.msg.decode(errors="replace") or _lib.cnnviz_status_string(status).decode()
        raise Error(status, err.file.decode(errors="replace"), msg)


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def _threads(n):
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"threads must be a whole number >= 0 (0 = all cores), not {n!r}")
    _lib.cnnviz_set_threads(n)


class Model:
    """A Keras model (.h5 or .keras) loaded by libcnnviz."""

    def __init__(self, path):
        self._m = ctypes.c_void_p()
        err = _Error()
        self.path = os.fspath(path)
        st = _lib.cnnviz_model_load(os.fsencode(self.path), ctypes.byref(self._m), ctypes.byref(err))
        if st != 0 and not err.file:  # as the cnnviz command names it
            err.file = os.fsencode(self.path)[:511]
        _check(st, err)

    def close(self):
        if getattr(self, "_m", None):
            _lib.cnnviz_model_free(self._m)
            self._m = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if not self._m:
            raise ValueError("the model is closed")
        return self._m

    @property
    def input_shape(self):
        """The shape of one sample, without the batch axis, e.g. (28, 28, 1)."""
        return _lib.cnnviz_model_input_shape(self._handle()).tuple()

    @property
    def output_shape(self):
        return _lib.cnnviz_model_output_shape(self._handle()).tuple()

    def summary(self):
        """The layers, as `cnnviz summary --json` gives them: a list of dicts
        with index, name, type, output_shape and params."""
        m = self._handle()
        layers = []
        for i in range(_lib.cnnviz_model_num_layers(m)):
            li = _LayerInfo()
            _lib.cnnviz_model_layer_info(m, i, ctypes.byref(li))
            layers.append({"index": li.index, "name": li.name.decode(), "type": li.class_name.decode(),
                           "output_shape": list(li.output_shape.tuple()), "params": li.params})
        return layers

    def num_params(self):
        return _lib.cnnviz_model_num_params(self._handle())

    def _image_hw(self):
        shape = self.input_shape
        size = int(np.prod(shape))
        if len(shape) == 3 and shape[2] != 1:
            raise ValueError(f"the model takes {shape[2]} channels; only 1-channel (grey) models take images")
        if len(shape) >= 2:
            return shape[0], shape[1]
        if size == 784:  # a flat MLP still takes a 28x28 digit
            return 28, 28
        raise ValueError("the model's input does not take an image")

    def _scale_float_pixels(self, px):
        """0..255 floats into the model's input scale, the float32 operations
        the cnnviz command does (tools/cli.c), so results match it bit for bit."""
        s = _lib.cnnviz_model_input_scale(self._handle())
        f255 = np.float32(255.0)
        if s.kind == 0:
            return px / f255
        if s.kind == 1:
            return px
        if s.kind == 2:
            return px / f255 - np.float32(0.5)
        return (px / f255 - np.float32(s.mean)) / np.float32(s.std)

    def _load_paths(self, paths, preprocess):
        h, w = self._image_hw()
        x = np.empty((len(paths), h * w), dtype=np.float32)
        err = _Error()
        for i, p in enumerate(paths):
            px = np.empty(h * w, dtype=np.float32)
            st = _lib.cnnviz_image_load_digit(os.fsencode(os.fspath(p)), int(bool(preprocess)), h, w, _ptr(px),
                                              None, ctypes.byref(err))
            if st != 0 and not err.file:
                err.file = os.fsencode(os.fspath(p))[:511]
            _check(st, err)
            x[i] = self._scale_float_pixels(px)
        return x

    def _as_input(self, x, preprocess):
        """x as a C-contiguous float32 (N, input size) array the library can read."""
        if isinstance(x, (str, os.PathLike)):
            x = [x]
        if isinstance(x, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in x):
            return self._load_paths(x, preprocess)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"predict takes image paths or a numpy array, not {type(x).__name__}")
        shape = self.input_shape
        size = int(np.prod(shape))
        if x.dtype not in (np.uint8, np.float32):
            raise TypeError(f"images must be uint8 pixels (0..255) or float32 in the model's input scale, not {x.dtype}"
                            " (convert with x.astype(numpy.float32))")
        if x.size == size and x.ndim <= len(shape):  # one sample without a batch axis
            x = x.reshape(1, size)
        if x.ndim < 1 or x.size == 0 or x.size % size or int(np.prod(x.shape[1:])) != size:
            raise ValueError(f"images have shape {x.shape}; the model takes (N, {', '.join(map(str, shape))})")
        x = np.ascontiguousarray(x.reshape(x.shape[0], size))
        if x.dtype == np.uint8:
            out = np.empty(x.shape, dtype=np.float32)
            _lib.cnnviz_scale_pixels(_ptr(x), _ptr(out), x.size, _lib.cnnviz_model_input_scale(self._handle()))
            return out
        return x

    def predict(self, x, batch=256, threads=0, preprocess=True):
        """The model's outputs, float32 (N, output size), like Keras'
        model.predict. x: image paths (PNG/JPEG, MNIST-style preprocessing
        unless preprocess=False), uint8 pixels (N, H, W[, C]) scaled as the model
        records, or float32 already in the model's input scale. threads=0: all
        cores."""
        _threads(threads)
        m = self._handle()
        x = self._as_input(x, preprocess)
        if batch < 1:
            raise ValueError(f"batch must be >= 1, not {batch}")
        out = np.empty((x.shape[0], int(np.prod(self.output_shape))), dtype=np.float32)
        err = _Error()
        _check(_lib.cnnviz_model_predict(m, _ptr(x), x.shape[0], batch, _ptr(out), ctypes.byref(err)), err)
        return out
