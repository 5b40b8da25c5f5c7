"""TensorFlow Addons' Maxout tests, ported, on every backend.

Source: tensorflow/addons, `tensorflow_addons/layers/tests/maxout_test.py`
at commit d208d752 (the last commit of the archived repository). Every
case is kept, with its layer arguments and shapes. Adapted:

- TFA's `Maxout` is `keras_aprelu.Maxout(grouping="strided")`: unit j takes
  channels j, j + U, ..., as TFA's reshape to (k, num_units) did.
- TFA's `test_utils.layer_test` is our `run_layer_test` (config, symbolic
  and eager calls, `.keras` round trip, fit steps), and every output is
  also compared, bit for bit, with `tfa_maxout` below: TFA's algorithm
  written in NumPy.
- TFA's error says "number of features", ours "number of channels"; the
  test matches our words.
"""

import os
import tempfile

import keras
import numpy as np
import pytest

from keras_aprelu import Maxout
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.layer_testing import run_layer_test


def tfa_maxout(x, num_units, axis=-1):
    """`tfa.layers.Maxout.call`: the channels reshaped to (k, num_units) in
    place of the axis, and the max over k."""
    axis = axis % x.ndim
    shape = list(x.shape)
    k = shape[axis] // num_units
    expanded = shape[:axis] + [k, num_units] + shape[axis + 1 :]
    return np.max(x.reshape(expanded), axis=axis)


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


def test_simple():
    run_layer_test(
        Maxout,
        {"num_units": 3, "grouping": "strided"},
        (5, 4, 2, 18),
        expected_output_shape=(5, 4, 2, 3),
        expected_num_trainable_weights=0,
    )
    x = _inputs((5, 4, 2, 18))
    np.testing.assert_array_equal(
        to_numpy(Maxout(3, grouping="strided")(x)), tfa_maxout(x, 3)
    )


@pytest.mark.parametrize("axis", [1, -3])
def test_nchw(axis):
    run_layer_test(
        Maxout,
        {"num_units": 4, "axis": axis, "grouping": "strided"},
        (2, 20, 3, 6),
        expected_output_shape=(2, 4, 3, 6),
        expected_num_trainable_weights=0,
    )
    x = _inputs((2, 20, 3, 6))
    np.testing.assert_array_equal(
        to_numpy(Maxout(4, axis=axis, grouping="strided")(x)), tfa_maxout(x, 4, axis)
    )


@pytest.mark.parametrize("input_shape", [(5, 4, 2, None), (None, None, None, None)])
def test_unknown(input_shape):
    # TFA built the layer with an unknown channel size and split the
    # channels of each call. So do we: the size is checked on every call.
    inputs = np.random.default_rng(0).random((5, 4, 2, 18)).astype("float32")
    layer = Maxout(3, grouping="strided")
    symbolic = keras.Input(batch_shape=input_shape)
    model = keras.Model(symbolic, layer(symbolic))
    expected_shape = tuple(input_shape[:3]) + (3,)
    assert tuple(model.output.shape) == expected_shape
    assert tuple(layer.compute_output_shape(input_shape)) == expected_shape
    expected = tfa_maxout(inputs, 3)
    np.testing.assert_array_equal(model.predict(inputs, verbose=0), expected)
    np.testing.assert_array_equal(to_numpy(layer(inputs)), expected)
    # Another channel size through the same model, and a model rebuilt
    # from its file.
    wider = np.random.default_rng(1).random((5, 4, 2, 27)).astype("float32")
    if input_shape[-1] is None:
        np.testing.assert_array_equal(
            model.predict(wider, verbose=0), tfa_maxout(wider, 3)
        )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), expected)
    # And it trains, under a Dense layer that its known output size builds.
    head = keras.layers.Dense(2)
    trained = keras.Model(symbolic, head(layer(symbolic)))
    trained.compile(optimizer="sgd", loss="mse")
    before = to_numpy(head.kernel).copy()
    history = trained.fit(inputs, np.ones((5, 4, 2, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(before, to_numpy(head.kernel))


def test_invalid_shape():
    with pytest.raises(ValueError, match="number of channels"):
        Maxout(3, grouping="strided")(_inputs((5, 4, 2, 7)))
    # With the size unknown when the layer is built, the first call says so.
    symbolic = keras.Input((4, 2, None))
    model = keras.Model(symbolic, Maxout(3, grouping="strided")(symbolic))
    with pytest.raises(ValueError, match=r"Received: num_units=3, channels=7"):
        model.predict(_inputs((5, 4, 2, 7)), verbose=0)


# TFA's algorithm over 41 setups: every axis of five shapes (TFA's two
# and three more), with each number of units in (1, 2, 3, 4, 6) that
# divides the axis.
SETUPS = [
    (shape, axis, num_units)
    for shape in [(3, 12), (2, 6, 8), (5, 4, 2, 18), (2, 20, 3, 6), (2, 3, 4, 6, 2)]
    for axis in range(1, len(shape))
    for num_units in (1, 2, 3, 4, 6)
    if shape[axis] % num_units == 0
]


@pytest.mark.parametrize("shape, axis, num_units", SETUPS)
def test_forward_is_bit_identical_to_tfa(shape, axis, num_units):
    x = np.random.default_rng(sum(shape) + axis).normal(size=shape).astype("float32")
    for index in (axis, axis - len(shape)):  # the axis counted both ways
        y = Maxout(num_units, axis=index, grouping="strided")(x)
        np.testing.assert_array_equal(to_numpy(y), tfa_maxout(x, num_units, axis))


def test_tied_maxima_send_the_gradient_to_the_first_winner():
    # Where we differ on purpose. TFA differentiated `reduce_max`, which
    # splits the gradient between tied maxima: on [[3, 1, 3, 1]] with 2
    # units (groups (3, 3) and (1, 1)) it gave [0.5, 0.5, 0.5, 0.5]. Our
    # hand-written backward keeps only the int32 index of each group's
    # winner (memory: bench_layers.py), and gives the whole gradient to the
    # first one, as max pooling does in TensorFlow and PyTorch:
    # [1, 1, 0, 0]. A subgradient either way; the README documents ours.
    x = np.array([[3.0, 1.0, 3.0, 1.0]], "float32")
    (grad,) = vjp(lambda t: Maxout(2, grouping="strided")(t), [x], np.ones((1, 2)))
    np.testing.assert_array_equal(grad, [[1, 1, 0, 0]])
    # Without ties, the gradient is TFA's: the one-hot of each winner.
    x = np.array([[3.0, 1.0, 2.0, 4.0]], "float32")
    (grad,) = vjp(lambda t: Maxout(2, grouping="strided")(t), [x], np.ones((1, 2)))
    np.testing.assert_array_equal(grad, [[1, 0, 0, 1]])
