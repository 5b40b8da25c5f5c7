import keras
import numpy as np
import pytest

from keras_aprelu import viz
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(3)


def test_filters_are_the_kernels_filter_first():
    model = models.randomize(models.nested())
    kernel = model.get_layer("backbone").get_layer("conv2").kernel.numpy()
    got = viz.filters(model, "backbone/conv2")
    assert got.shape == (6, 3, 3, 4)
    np.testing.assert_array_equal(got, np.moveaxis(kernel, -1, 0))
    first = viz.filters(model)  # the first conv layer
    np.testing.assert_array_equal(
        first, np.moveaxis(model.get_layer("backbone").get_layer("conv1").kernel, -1, 0)
    )


def test_depthwise_filters():
    inp = keras.Input((6, 6, 2))
    layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    model = keras.Model(inp, layer(inp))
    got = viz.filters(model)
    kernel = layer.kernel.numpy()  # (3, 3, 2, 2)
    assert got.shape == (4, 3, 3, 1)
    np.testing.assert_array_equal(got[3, ..., 0], kernel[:, :, 1, 1])


def test_filters_of_a_non_conv_layer():
    model = models.functional()
    with pytest.raises(
        ValueError,
        match=r"`layer` must be a convolution layer.*"
        r"Received: layer='gap'",
    ):
        viz.filters(model, "gap")


def test_feature_maps_equal_the_layer_output():
    model = models.randomize(models.functional())
    x = RNG.random((5, 8, 8, 2)).astype("float32")
    sub = keras.Model(model.input, model.get_layer("aprelu").output)
    got = viz.feature_maps(model, x, "aprelu", batch_size=2)
    np.testing.assert_allclose(got, to_numpy(sub(x)), rtol=1e-6, atol=1e-6)


def test_activation_maximization_excites_its_filter():
    model = models.randomize(models.functional(), seed=1)
    images, scores = viz.activation_maximization(
        model, "conv2", [0, 3], steps=40, jitter=1, return_scores=True
    )
    assert images.shape == (2, 8, 8, 2)
    assert images.min() >= 0.0 and images.max() <= 1.0
    sub = keras.Model(model.input, model.get_layer("conv2").output)
    start = np.random.default_rng(0).normal(0.5, 0.01, (2, 8, 8, 2))
    before = to_numpy(sub(start)).mean(axis=(1, 2))[[0, 1], [0, 3]]
    after = to_numpy(sub(images)).mean(axis=(1, 2))[[0, 1], [0, 3]]
    np.testing.assert_allclose(after, scores, rtol=1e-4, atol=1e-5)
    assert np.all(after > before + 0.1)


def test_activation_maximization_of_a_class_uses_logits():
    model = models.randomize(models.functional(), seed=2)
    images = viz.activation_maximization(model, "dense", [0, 1, 2], steps=60, jitter=0)
    with viz_logits(model):
        logits = to_numpy(model(images))
    # The image made for class c scores c higher than the others do.
    np.testing.assert_array_equal(np.argmax(logits, axis=0), [0, 1, 2])


def viz_logits(model):
    return models.logits(model)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"index": 6}, r"`index` must lie in \[0, 5\]"),
        ({"index": -1}, "`index` must be an int >= 0"),
        ({"index": 0, "value_range": (1, 0)}, "`value_range` must be"),
        ({"index": 0, "steps": 0}, "`steps` must be a positive int"),
        ({"index": 0, "jitter": -2}, "`jitter` must be an int >= 0"),
    ],
)
def test_activation_maximization_bad_arguments(kwargs, message):
    model = models.functional()
    with pytest.raises(ValueError, match=message):
        viz.activation_maximization(model, "conv2", **kwargs)
