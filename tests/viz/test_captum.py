"""Our maps against Captum's, on PyTorch: a Keras model on the torch backend
is a `torch.nn.Module`, which Captum attributes directly.

Captum's LayerGradCam needs a layer to hook, and a Keras layer is not one
it can hook inside the model's call, so the CAMs are compared with
TensorFlow's results instead (tests/viz/test_backends.py), and with
tf-keras-vis on TensorFlow (tests/viz/test_oracles.py).
"""

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from tests.backend_testing import backend
from tests.viz.test_backends import every_activation_model

if backend() != "torch":
    pytest.skip("Captum attributes PyTorch modules", allow_module_level=True)
captum = pytest.importorskip("captum.attr")
import torch  # noqa: E402

X = np.random.default_rng(5).random((3, 10, 8, 3)).astype("float32")
TARGET = 2


def logits_model():
    """every_activation_model without its final softmax: Captum scores the
    module's output, ours scores logits (`logits=True`)."""
    model = every_activation_model()
    head = model.layers[-1]
    head.activation = keras.activations.linear
    return model


def captum_of(algorithm, model, **kwargs):
    x = torch.tensor(X, requires_grad=True)
    attribution = algorithm(lambda x: model(x, training=False)).attribute(
        x, target=TARGET, **kwargs
    )
    return attribution.detach().numpy()


def test_saliency_equals_captums():
    model = logits_model()
    theirs = captum_of(captum.Saliency, model, abs=True).max(axis=-1)
    ours = viz.saliency(model, X, TARGET, normalize=False)
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_equal_captums_trapezoid_rule():
    model = logits_model()
    theirs = captum_of(
        captum.IntegratedGradients,
        model,
        baselines=0.0,
        n_steps=9,  # 8 intervals
        method="riemann_trapezoid",
    ).sum(axis=-1)
    ours = viz.integrated_gradients(model, X, TARGET, steps=8, normalize=False)
    assert np.abs(theirs).max() > 0
    # Captum's trapezoid rule (0.9.0) gives each of its n points a step of
    # 1/n, halved at the ends, so its weights sum to (n - 1) / n, not 1;
    # ours sum to 1 (completeness, tested in test_saliency.py). The same
    # points and gradients otherwise: the maps differ by that factor alone.
    np.testing.assert_allclose(ours * 8 / 9, theirs, rtol=1e-5, atol=1e-6)


def test_occlusion_equals_captums():
    model = logits_model()
    # 2 x 2 windows at stride 2 tile the 10 x 8 image exactly, the case in
    # which both average a position's drop over the windows covering it.
    theirs = captum_of(
        captum.Occlusion,
        model,
        sliding_window_shapes=(2, 2, 3),
        strides=(2, 2, 3),
        baselines=0.0,
    )
    # Captum spreads a window's drop over its channels alike.
    np.testing.assert_allclose(theirs[..., 0], theirs[..., 2], rtol=1e-6)
    ours = viz.occlusion(model, X, TARGET, patch_size=2, stride=2, normalize=False)
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs[..., 0], rtol=1e-5, atol=1e-6)
