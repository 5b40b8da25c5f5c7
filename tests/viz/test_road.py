"""ROAD: against pytorch-grad-cam 1.5.7 with noise 0, the imputation by
hand and against theirs, the noise's seed, and the errors.

pytorch-grad-cam's package imports torchvision and OpenCV when it is
imported, and neither is installed (no CPU build of torchvision matches
torch 2.13 on the index). Its two metric modules need neither but OpenCV's
name, for a threshold ROAD does not use: they are loaded from their files
alone, under a stub package, with a stub `cv2`, and the stubs are taken
away again.

Their imputer calls `np.argwhere` on a torch tensor, which NumPy 2 refuses
(torch's `__array_wrap__` predates NumPy 2's). `Mask` hands it the same
mask as a NumPy array that also answers `.numpy()`: their algorithm runs
unchanged.
"""

import importlib.util
import pathlib
import sys
import types

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from keras_aprelu.viz import _imputation
from keras_aprelu.viz import metrics
from tests.backend_testing import backend
from tests.viz import models

pytest.importorskip("scipy")

RNG = np.random.default_rng(21)
X = RNG.random((3, 12, 10, 3)).astype("float32")


def small_cnn():
    inputs = keras.Input((12, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="head")(x)
    return models.randomize(keras.Model(inputs, outputs), 5)


def load_their_road():
    """pytorch-grad-cam 1.5.7's `metrics.road` module, loaded alone."""
    spec = importlib.util.find_spec("pytorch_grad_cam")
    if spec is None:
        pytest.skip("grad-cam 1.5.7 is not installed (make installs it)")
    folder = pathlib.Path(spec.submodule_search_locations[0]) / "metrics"
    names = ["pytorch_grad_cam", "pytorch_grad_cam.metrics", "cv2"]
    saved = {name: sys.modules.get(name) for name in names}
    for name in names[:2]:
        stub = types.ModuleType(name)
        stub.__path__ = []
        sys.modules[name] = stub
    if saved["cv2"] is None:
        sys.modules["cv2"] = types.ModuleType("cv2")
    try:
        loaded = {}
        for name in ("perturbation_confidence", "road"):
            full = f"pytorch_grad_cam.metrics.{name}"
            module_spec = importlib.util.spec_from_file_location(
                full, folder / f"{name}.py"
            )
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[full] = module
            module_spec.loader.exec_module(module)
            loaded[name] = module
        return loaded["road"], loaded["perturbation_confidence"]
    finally:
        for name in ("perturbation_confidence", "road"):
            sys.modules.pop(f"pytorch_grad_cam.metrics.{name}", None)
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class Mask(np.ndarray):
    def numpy(self):
        return np.asarray(self)


def numpy_mask(imputer):
    """`imputer`, given its mask as a `Mask` instead of a torch tensor."""

    def call(image, mask):
        return imputer(image, np.asarray(mask.numpy(), "float32").view(Mask))

    return call


def test_the_imputation_by_hand():
    # The centre of a 3 x 3 image: the weighted mean of its 8 neighbours.
    image = np.arange(9, dtype="float32").reshape(3, 3, 1) ** 2
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    got = _imputation.impute(image, removed)
    corners = image[0, 0] + image[0, 2] + image[2, 0] + image[2, 2]
    sides = image[0, 1] + image[1, 0] + image[1, 2] + image[2, 1]
    np.testing.assert_allclose(got[1, 1], corners / 12 + sides / 6, rtol=1e-6)
    np.testing.assert_array_equal(got[~removed], image[~removed])
    # A corner, whose weights outside the image are dropped from its sum:
    # -(1/6 + 1/6 + 1/12) v + (1/6 a + 1/6 b + 1/12 c) = 0.
    removed = np.zeros((3, 3), bool)
    removed[0, 0] = True
    got = _imputation.impute(image, removed)
    want = (image[0, 1] / 6 + image[1, 0] / 6 + image[1, 1] / 12) / (5 / 12)
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-6)


needs_torch = pytest.mark.skipif(
    backend() != "torch", reason="pytorch-grad-cam scores a torch module"
)


@needs_torch
def test_the_imputation_equals_pytorch_grad_cams():
    import torch

    road, _ = load_their_road()
    image = RNG.random((7, 9, 2)).astype("float32")
    removed = RNG.random((7, 9)) < 0.45
    removed[0, :] = True  # a border row, and both corners
    theirs = numpy_mask(road.NoisyLinearImputer(noise=0.0))(
        torch.tensor(np.moveaxis(image, -1, 0)), torch.tensor((~removed) * 1.0)
    )
    ours = _imputation.impute(image, removed)
    np.testing.assert_allclose(ours, np.moveaxis(theirs.numpy(), 0, -1), rtol=1e-5)
    assert np.abs(ours - image)[removed].max() > 1e-2  # pixels did change


@needs_torch
@pytest.mark.parametrize("order", ["morf", "lerf", "combined"])
def test_road_equals_pytorch_grad_cams_without_noise(order):
    import torch

    road, confidence = load_their_road()
    model = small_cnn()
    with models.logits(model, "head"):
        maps = viz.saliency(model, X)

        class NCHW(torch.nn.Module):  # the model as their metric calls it
            def forward(self, x):
                return model(x.permute(0, 2, 3, 1), training=False)

        classes = np.argmax(keras.ops.convert_to_numpy(model(X)), axis=1)
        targets = [lambda out, c=int(c): out[c] for c in classes]
        x = torch.tensor(np.moveaxis(X, -1, 1))

        def average(remove):
            scores = [
                confidence.PerturbationConfidenceMetric(
                    remove(p, numpy_mask(road.NoisyLinearImputer(noise=0.0)))
                )(x, maps, targets, NCHW())
                for p in (10, 20, 30, 40, 50, 60, 70, 80, 90)
            ]
            return np.mean(np.float32(scores), axis=0)

        with torch.no_grad():
            morf = average(confidence.RemoveMostRelevantFirst)
            lerf = average(confidence.RemoveLeastRelevantFirst)
    theirs = {"morf": morf, "lerf": lerf, "combined": (lerf - morf) / 2}[order]
    ours = metrics.road(model, X, maps, order=order, noise=0.0)
    assert np.abs(theirs).max() > 1e-3  # scores that could differ
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_road_curves_and_orders_agree():
    model = small_cnn()
    maps = viz.gradient_x_input(model, X, normalize=False)
    combined, curves = metrics.road(model, X, maps, return_curve=True, seed=3)
    assert sorted(curves) == ["lerf", "morf"]
    assert curves["morf"].shape == (3, 9)
    morf = metrics.road(model, X, maps, order="morf", seed=3)
    np.testing.assert_allclose(curves["morf"].mean(axis=1), morf, rtol=1e-6)
    np.testing.assert_allclose(
        combined, (curves["lerf"].mean(1) - curves["morf"].mean(1)) / 2, rtol=1e-6
    )
    # The score is a logit change: removing 90 % of the image moves it.
    assert np.abs(curves["morf"][:, 0]).max() > 1e-3


def test_road_noise_is_seeded_per_image_whatever_the_chunking():
    model = small_cnn()
    maps = RNG.random((3, 12, 10)).astype("float32")
    one = metrics.road(model, X, maps, noise=0.05, seed=1)
    chunked = metrics.road(model, X, maps, noise=0.05, seed=1, batch_size=9)
    np.testing.assert_allclose(one, chunked, rtol=1e-5, atol=1e-6)
    other = metrics.road(model, X, maps, noise=0.05, seed=2)
    assert np.abs(other - one).max() > 1e-6
    quiet = metrics.road(model, X, maps, noise=0.0, seed=1)
    assert np.abs(quiet - one).max() > 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"order": "both"}, "Received: order='both'"),
        ({"percentiles": (0, 50)}, r"Received: percentiles=\(0, 50\)"),
        ({"percentiles": []}, r"Received: percentiles=\[\]"),
        ({"noise": -0.1}, "Received: noise=-0.1"),
    ],
)
def test_road_arguments_are_checked(kwargs, match):
    maps = np.zeros((3, 12, 10), "float32")
    with pytest.raises(ValueError, match=match):
        metrics.road(small_cnn(), X, maps, **kwargs)


def test_road_refuses_maps_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"`maps`.*Received: maps.shape=\(3, 10, 12\)"):
        metrics.road(small_cnn(), X, np.zeros((3, 10, 12), "float32"))
    with pytest.raises(ValueError, match=r"one map per input \(3\)"):
        metrics.road(small_cnn(), X, np.zeros((4, 12, 10), "float32"))
