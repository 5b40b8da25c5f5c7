"""viz on every Keras backend: the same maps from one `.keras` file, the
current weights always, and the user's autograd state left alone."""

import gc
import json
import pathlib
import weakref

import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu import viz
from keras_aprelu.viz import _backend
from keras_aprelu.viz import metrics
from tests.backend_testing import backend
from tests.backend_testing import run_python
from tests.viz import models

ROOT = pathlib.Path(__file__).resolve().parents[2]
X = np.random.default_rng(0).random((2, 10, 8, 3)).astype("float32")


def every_method(model, x):
    """Every viz computation on `model`, as float64 arrays. The noisy ones
    (SmoothGrad, the noise tunnel, activation maximization's start and
    jitter) draw their noise in NumPy, so they are the same everywhere."""
    results = {
        "saliency": viz.saliency(model, x, 1, normalize=False),
        "guided": viz.saliency(model, x, 1, modifier="guided", normalize=False),
        "deconvnet": viz.saliency(model, x, 1, modifier="deconvnet", normalize=False),
        "smoothgrad": viz.saliency(
            model, x, 1, smooth_samples=3, seed=5, normalize=False
        ),
        "integrated_gradients": viz.integrated_gradients(
            model, x, 1, steps=4, normalize=False
        ),
        "gradient_x_input": viz.gradient_x_input(model, x, 1, normalize=False),
        "grad_cam": viz.grad_cam(model, x, 1, normalize=False),
        "grad_cam_plus_plus": viz.grad_cam_plus_plus(model, x, 1, normalize=False),
        "hires_cam": viz.hires_cam(model, x, 1, normalize=False),
        "layer_cam": viz.layer_cam(model, x, 1, normalize=False),
        "guided_grad_cam": viz.guided_grad_cam(model, x, 1, normalize=False),
        "score_cam": viz.score_cam(model, x, 1, normalize=False),
        "occlusion": viz.occlusion(
            model, x, 1, patch_size=3, stride=2, normalize=False
        ),
        "lrp": viz.lrp(model, x, 1, normalize=False),
        "lrp_gamma_box": viz.lrp(
            model, x, 1, composite="epsilon_gamma_box", normalize=False
        ),
        "lrp_alpha_beta": viz.lrp(
            model, x, 1, composite="epsilon_alpha2_beta1", normalize=False
        ),
        "deeplift": viz.deeplift(model, x, 1, baseline=0.5, normalize=False),
        "deeplift_shap": viz.deeplift_shap(model, x, x[::-1] * 0.5, 1, normalize=False),
        "noise_tunnel": viz.noise_tunnel(
            viz.gradient_x_input, model, x, 1, samples=2, seed=3, normalize=False
        ),
        "deletion": metrics.deletion(model, x, viz.saliency(model, x, 1), 1, steps=4),
        "insertion": metrics.insertion(model, x, viz.saliency(model, x, 1), 1, steps=4),
        "road": metrics.road(
            model, x, viz.saliency(model, x, 1), 1, percentiles=(30, 70), seed=4
        ),
        "slopes": viz.aprelu_slopes(model, x)["act1"],
        "dead_units": np.array(list(viz.dead_units(model, x).values())),
        "feature_maps": viz.feature_maps(model, x, "act2"),
        "filters": viz.filters(model, "conv1"),
        "activation_maximization": viz.activation_maximization(
            model, "act2", [0, 3], steps=4, jitter=1, seed=2
        ),
    }
    return {k: np.asarray(v, dtype="float64") for k, v in results.items()}


def every_activation_model(seed=3):
    """A CNN with APReLU, PReLU, Maxout, RReLU and a final softmax."""
    inputs = keras.Input((10, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras_aprelu.APReLU(name="act1")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = keras_aprelu.PReLU(name="act2")(x)
    x = keras.layers.Conv2D(12, 3, padding="same", name="conv3")(x)
    x = keras_aprelu.Maxout(3, name="act3")(x)
    x = keras_aprelu.RReLU(name="act4")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return models.randomize(keras.Model(inputs, outputs), seed)


_OTHER_BACKEND = """
import json
import keras
import numpy as np
import keras_aprelu  # registers the layers
from tests.viz.test_backends import X, every_method

model = keras.saving.load_model({path!r})
print(json.dumps({{k: v.tolist() for k, v in every_method(model, X).items()}}))
"""


@pytest.mark.skipif(backend() != "tensorflow", reason="starts the other backends")
@pytest.mark.parametrize("other", ["jax", "torch"])
def test_one_keras_file_gives_the_same_maps_on_every_backend(other, tmp_path):
    model = every_activation_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    expected = every_method(model, X)
    result = run_python(_OTHER_BACKEND.format(path=path), KERAS_BACKEND=other)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        if name != "dead_units":  # none dead is right for leaky units
            assert np.abs(want).max() > 0, name  # a map that could differ
        np.testing.assert_allclose(
            np.array(got[name]), want, rtol=1e-4, atol=1e-5, err_msg=name
        )


def test_maps_come_from_the_current_weights():
    # Under JAX a compiled function that closed over the variables would
    # keep the weights of its first call.
    model, other = every_activation_model(seed=3), every_activation_model(seed=4)
    before = every_method(model, X)
    model.set_weights(other.get_weights())
    after, fresh = every_method(model, X), every_method(other, X)
    for name in ("saliency", "grad_cam", "occlusion", "slopes", "deletion"):
        np.testing.assert_allclose(after[name], fresh[name], rtol=1e-5, atol=1e-6)
        assert not np.allclose(after[name], before[name]), name


def test_a_dropped_model_is_freed_with_its_functions():
    model = every_activation_model()
    viz.saliency(model, X)
    viz.grad_cam(model, X)
    assert len(_backend.functions_of(model)) >= 2
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


@pytest.mark.skipif(backend() != "torch", reason="PyTorch's autograd state")
def test_torch_autograd_state_is_left_alone():
    import torch

    model = every_activation_model()
    parameters = [v.value for v in model.trainable_variables]
    marker = [torch.full_like(p, 7.0) for p in parameters]
    for p, g in zip(parameters, marker, strict=True):
        p.grad = g.clone()
    parameters[0].requires_grad_(False)
    flags = [p.requires_grad for p in parameters]
    expected = viz.saliency(model, X, 1, normalize=False)
    with torch.no_grad():  # the user's own no_grad does not stop viz
        inside = viz.saliency(model, X, 1, normalize=False)
        cams = viz.grad_cam(model, X, 1, normalize=False)
        guided = viz.saliency(model, X, 1, modifier="guided", normalize=False)
    np.testing.assert_allclose(inside, expected, rtol=1e-6)
    assert np.abs(cams).max() > 0 and np.abs(guided).max() > 0
    assert [p.requires_grad for p in parameters] == flags
    for p, g in zip(parameters, marker, strict=True):
        assert p.grad is not None and torch.equal(p.grad, g)
    # What viz returns holds no autograd graph.
    assert isinstance(expected, np.ndarray)
