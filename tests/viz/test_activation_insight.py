import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu import viz
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(4)


def test_aprelu_slopes_equal_the_layers_own_slopes():
    model = models.randomize(models.nested(), seed=2)
    x = RNG.random((5, 8, 8, 2)).astype("float32")
    slopes = viz.aprelu_slopes(model, x, batch_size=2)
    assert list(slopes) == ["backbone/aprelu"]
    backbone = model.get_layer("backbone")
    layer = backbone.get_layer("aprelu")
    expected = to_numpy(layer.slopes(backbone.get_layer("conv1")(x)))
    np.testing.assert_allclose(
        slopes["backbone/aprelu"], expected, rtol=1e-5, atol=1e-6
    )
    # The slopes differ from sample to sample: the point of APReLU.
    assert slopes["backbone/aprelu"].std(axis=0).max() > 1e-3


@pytest.mark.parametrize("normalization", ["none", "batch"])
def test_aprelu_slopes_in_training_mode(normalization):
    # Each batch of `batch_size` normalized with its own statistics, as fit
    # computes it; the moving statistics are left as they were.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))
    layer = keras_aprelu.APReLU(normalization=normalization, name="act")
    model = keras.Model(inputs, layer(keras.layers.Conv2D(3, 3)(inputs)))
    for norm in layer.normalization_layers():
        if hasattr(norm, "moving_mean"):
            norm.moving_mean.assign(np.full(norm.moving_mean.shape, 2.0))
    x = RNG.random((6, 6, 6, 2)).astype("float32")
    before = [to_numpy(v).copy() for v in model.non_trainable_variables]
    train = viz.aprelu_slopes(model, x, training=True, batch_size=3)["act"]
    infer = viz.aprelu_slopes(model, x, batch_size=3)["act"]
    for variable, value in zip(model.non_trainable_variables, before, strict=True):
        np.testing.assert_array_equal(to_numpy(variable), value)
    features = to_numpy(model.layers[1](x))
    expected = np.concatenate(
        [to_numpy(layer.slopes(features[i : i + 3], training=True)) for i in (0, 3)]
    )
    for variable, value in zip(model.non_trainable_variables, before, strict=True):
        variable.assign(value)
    np.testing.assert_allclose(train, expected, rtol=1e-5, atol=1e-6)
    if normalization == "none":
        np.testing.assert_allclose(train, infer, rtol=1e-5, atol=1e-6)
    else:  # moving means 2.0 away: inference does not compute training's
        assert np.abs(train - infer).mean() > 0.05
    with pytest.raises(TypeError, match=r"Received: training='yes'"):
        viz.aprelu_slopes(model, x, training="yes")


def test_aprelu_slopes_need_an_aprelu_layer():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`model` has no APReLU layer"):
        viz.aprelu_slopes(model, np.zeros((1, 3)))


def test_dead_units_counts_units_that_never_fire():
    inp = keras.Input((2,))
    dense = keras.layers.Dense(3, activation="relu", name="hidden")
    prelu = keras_aprelu.PReLU(name="prelu")
    h = dense(inp)
    out = keras.layers.Dense(1)(prelu(keras.layers.Dense(4, name="d2")(h)))
    model = keras.Model(inp, out)
    # unit 0: x0 (alive), unit 1: -1 - |x| (dead), unit 2: x0 - 10 (dead
    # for |x0| < 10)
    dense.set_weights(
        [
            np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], "float32"),
            np.array([0.0, -1.0, -10.0], "float32"),
        ]
    )
    model.get_layer("d2").set_weights(
        [np.zeros((3, 4), "float32"), np.array([1, -1, -1, -1], "float32")]
    )
    x = RNG.normal(size=(50, 2)).astype("float32")
    dead = viz.dead_units(model, x, batch_size=16)
    assert dead == pytest.approx({"hidden": 2 / 3, "prelu": 3 / 4})
    dead = viz.dead_units(model, x, per="neuron")
    assert dead == pytest.approx({"hidden": 2 / 3, "prelu": 3 / 4})


def test_dead_units_per_channel_and_per_neuron_differ_on_feature_maps():
    inp = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(2, 1, activation="relu", name="conv")
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(conv(inp))))
    conv.set_weights([np.array([[[[1.0, -1.0]]]], "float32"), np.zeros(2, "float32")])
    x = np.zeros((3, 4, 4, 1), "float32")
    x[:, 0, 0, 0] = 1.0  # channel 0 fires at one position only
    assert viz.dead_units(model, x) == {"conv": 0.5}
    assert viz.dead_units(model, x, per="neuron") == {"conv": 1 - 1 / 32}


def test_dead_units_bad_per():
    with pytest.raises(ValueError, match="`per` must be one of 'channel', 'neuron'"):
        viz.dead_units(models.functional(), np.zeros((1, 8, 8, 2)), per="layer")
