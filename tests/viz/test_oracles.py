"""Our CAMs against an independent implementation: tf-keras-vis 0.8.7."""

import warnings

import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu import viz
from tests.backend_testing import tensorflow_only
from tests.viz import models

# tf-keras-vis 0.8.7 runs on TensorFlow only; test_backends.py checks that
# the other backends give TensorFlow's maps.
pytestmark = tensorflow_only("tf-keras-vis, the oracle, runs on TensorFlow")
if keras.config.backend() != "tensorflow":
    pytest.skip("tf-keras-vis runs on TensorFlow only", allow_module_level=True)
tf_keras_vis = pytest.importorskip("tf_keras_vis")
from tf_keras_vis.gradcam import Gradcam  # noqa: E402
from tf_keras_vis.layercam import Layercam  # noqa: E402
from tf_keras_vis.scorecam import Scorecam  # noqa: E402
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear  # noqa: E402
from tf_keras_vis.utils.scores import CategoricalScore  # noqa: E402


def cnn(activation):
    inp = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inp)
    x = activation(x)
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    return models.randomize(model, seed=2)


@pytest.mark.parametrize(
    "activation",
    [keras_aprelu.APReLU(name="act"), keras.layers.ReLU(name="act")],
    ids=["APReLU", "ReLU"],
)
@pytest.mark.parametrize(
    "ours, theirs",
    [(viz.grad_cam, Gradcam), (viz.layer_cam, Layercam)],
    ids=["grad_cam", "layer_cam"],
)
def test_cams_equal_tf_keras_vis(activation, ours, theirs):
    model = cnn(activation)
    x = np.random.default_rng(0).random((4, 8, 8, 2)).astype("float32")
    targets = [0, 1, 2, 1]
    # At the layer's own resolution (no pooling before it, so no
    # interpolation enters), unnormalized; tf-keras-vis must be told not to
    # move to the nearest convolution.
    expected = theirs(model, model_modifier=ReplaceToLinear(), clone=True)(
        CategoricalScore(targets),
        x,
        penultimate_layer="act",
        seek_penultimate_conv_layer=False,
        normalize_cam=False,
        expand_cam=False,
    )
    got = ours(model, x, targets, layer="act", normalize=False)
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-5, atol=1e-7)
    assert got.max() > 0


@pytest.mark.parametrize(
    "activation",
    [keras_aprelu.APReLU(name="act"), keras.layers.ReLU(name="act")],
    ids=["APReLU", "ReLU"],
)
def test_score_cam_with_probability_weights_equals_tf_keras_vis(activation):
    # tf-keras-vis weighs each channel by the softmax probability of the
    # class for the masked input (the authors' code): weights="probability".
    model = cnn(activation)
    x = np.random.default_rng(1).random((3, 8, 8, 2)).astype("float32")
    targets = [2, 0, 1]
    with warnings.catch_warnings():
        # tf-keras-vis passes its masked inputs to predict as a list, which
        # Keras 3 warns about for a model with one input.
        warnings.simplefilter("ignore", UserWarning)
        expected = Scorecam(model, model_modifier=ReplaceToLinear(), clone=True)(
            CategoricalScore(targets),
            x,
            penultimate_layer="act",
            seek_penultimate_conv_layer=False,
            normalize_cam=False,
            expand_cam=False,
        )
    got = viz.score_cam(
        model, x, targets, layer="act", weights="probability", normalize=False
    )
    # tf-keras-vis scales the masks by (max - min + 1e-7): a relative 1e-6.
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-4, atol=1e-6)
    assert got.max() > 0
