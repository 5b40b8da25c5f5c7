"""The activation registry: every activation has an entry, and the entries
are what the methods use."""

import inspect
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aprelu
from keras_aprelu import viz
from keras_aprelu.viz import _registry
from tests.backend_testing import tensorflow_only

RNG = np.random.default_rng(9)


def keras_activation_functions():
    return {
        name: getattr(keras.activations, name)
        for name in dir(keras.activations)
        if not name.startswith("_")
        and name not in ("get", "serialize", "deserialize")
        and callable(getattr(keras.activations, name))
    }


def keras_activation_layers():
    return [
        getattr(keras.layers, name)
        for name in dir(keras.layers)
        if inspect.isclass(getattr(keras.layers, name))
        and ".activations." in getattr(keras.layers, name).__module__
    ]


@pytest.mark.parametrize("name", sorted(keras_activation_functions()))
def test_every_keras_activation_function_has_an_entry(name):
    fn = keras_activation_functions()[name]
    assert _registry.function_name(fn) in _registry.FUNCTIONS, name


def test_every_activation_layer_has_an_entry():
    ours = [
        getattr(keras_aprelu, name)
        for name in keras_aprelu.__all__
        if inspect.isclass(getattr(keras_aprelu, name))
        and issubclass(getattr(keras_aprelu, name), keras.layers.Layer)
    ]
    assert len(ours) == 4
    layers = keras_activation_layers()
    assert {cls.__name__ for cls in layers} >= {"ReLU", "LeakyReLU", "PReLU", "ELU"}
    for cls in ours + layers:
        if cls is keras.layers.Activation:
            continue  # found by its function, checked above
        assert cls in _registry.LAYERS, cls.__name__


def test_entries_are_well_formed():
    entries = [*_registry.LAYERS.values(), *_registry.FUNCTIONS.values()]
    for entry in filter(None, entries):
        assert entry.rule in _registry.RULES
        assert entry.dead in ("positive", "nonzero", None)
        assert not entry.squashes or entry.dead is None  # probabilities


@pytest.mark.parametrize(
    "activation",
    [
        keras.layers.Activation("relu6"),
        pytest.param(
            keras.layers.Activation(tf.nn.relu6),
            marks=tensorflow_only("tf.nn.relu6 takes TensorFlow tensors"),
        ),
        keras.layers.ReLU(max_value=6.0),
    ],
    ids=["Activation('relu6')", "tf.nn.relu6", "ReLU(max_value=6)"],
)
def test_relu6_in_every_form_gets_the_guided_rule(activation):
    # x -> Dense(w1) -> relu6 -> Dense(w2): guided gives
    # w1 @ (relu6'(h) * relu(w2)), by hand.
    w1 = RNG.normal(size=(3, 4)).astype("float32")
    w2 = RNG.normal(size=(4, 1)).astype("float32")
    inp = keras.Input((3,))
    hidden = keras.layers.Dense(4, use_bias=False)
    out = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inp, out(activation(hidden(inp))))
    hidden.set_weights([w1 * 4])
    out.set_weights([w2])
    x = RNG.normal(size=(5, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no rule" warning
        got = viz.saliency(model, x, 0, modifier="guided", normalize=False)
    h = x @ (w1 * 4)
    inside = ((h > 0) & (h < 6)).astype("float32")
    expected = np.abs((inside * np.maximum(w2[:, 0], 0)) @ (w1 * 4).T)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert (h > 6).any() and (h < 0).any()  # both kinks are exercised


def test_dead_units_follow_the_registry():
    # sigmoid cannot die and is left out; a shrink function is alive where
    # it is not zero, including its negative side.
    inp = keras.Input((4,))
    s = keras.layers.Dense(3, activation="sigmoid", name="sig")(inp)
    k = keras.layers.Dense(2, activation="hard_shrink", name="shrink")(s)
    model = keras.Model(inp, keras.layers.Dense(1, name="head")(k))
    model.get_layer("shrink").set_weights(
        [np.array([[-1.0, 0.0]] * 3, "float32"), np.array([-3.0, 0.1], "float32")]
    )
    dead = viz.dead_units(model, RNG.random((6, 4)))
    # unit 0: -sum(sigmoid) - 3 < -3, fires negatively; unit 1: 0.1 < 0.5
    # lies inside hard_shrink's zero band, so it never fires.
    assert dead == {"shrink": 0.5}


def test_unruled_warning_is_one_short_line_per_kind():
    inp = keras.Input((4,))
    x = inp
    for i in range(30):
        x = keras.layers.Dense(4, activation="silu", name=f"swish{i}")(x)
    x = keras.layers.Dense(4, activation="sigmoid", name="gate")(x)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    with pytest.warns(UserWarning) as record:
        viz.saliency(model, RNG.random((2, 4)), modifier="guided")
    (message,) = [str(w.message) for w in record]
    assert "no rule for 31 activations" in message
    assert "30 x silu (swish0, swish1, swish2, ...)" in message
    assert "1 x sigmoid (gate)" in message
    assert len(message) < 250
