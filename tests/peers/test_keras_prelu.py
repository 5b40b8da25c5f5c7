"""Keras's PReLU tests, ported, on every backend.

Source: keras-team/keras, `keras/src/layers/activations/prelu_test.py` at
commit 3422977a5e: both cases, with their arguments, shapes and reference.
Adapted:

- `keras.layers.PReLU` is `keras_aprelu.PReLU`, whose arguments these
  cases use in the same way (`alpha_initializer`, `alpha_regularizer`,
  `alpha_constraint`, `shared_axes`).
- Keras's private `run_layer_test` is our `run_layer_test`; its
  `supports_masking=True` is checked here by passing a mask through.
- `assertAllClose` is `np.testing.assert_allclose` with its tolerance,
  1e-6.
"""

import keras
import numpy as np
import pytest

from keras_aprelu import PReLU
from tests.backend_testing import to_numpy
from tests.layer_testing import run_layer_test


def test_prelu():
    kwargs = {
        "alpha_initializer": "zeros",
        "alpha_regularizer": "L1",
        "alpha_constraint": "MaxNorm",
        "shared_axes": 1,
    }
    run_layer_test(
        PReLU,
        kwargs,
        (2, 3, 4),
        expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=1,
        expected_num_trainable_params=4,
    )
    # supports_masking: the mask of a Masking layer reaches the next layer.
    layer = PReLU(**kwargs)
    assert layer.supports_masking
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    x[0, 1] = 0.0  # masked out by Masking(0.0)
    inputs = keras.Input((3, 4))
    seen = _MaskProbe()(layer(keras.layers.Masking(0.0)(inputs)))
    np.testing.assert_array_equal(
        keras.Model(inputs, seen).predict(x, verbose=0), [[1, 0, 1], [1, 1, 1]]
    )


class _MaskProbe(keras.layers.Layer):
    """Outputs the mask it receives, as 1 and 0, or -1 where it got none."""

    def __init__(self):
        super().__init__()
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is None:
            return -keras.ops.ones(keras.ops.shape(x)[:-1])
        return keras.ops.cast(mask, "float32")


def test_prelu_correctness():
    def np_prelu(x, alpha):
        return (x > 0) * x + (x <= 0) * alpha * x

    inputs = np.random.default_rng(1).normal(size=(2, 10, 5, 3))
    prelu_layer = PReLU(
        alpha_initializer="glorot_uniform",
        alpha_regularizer="l1",
        alpha_constraint="non_neg",
        shared_axes=(1, 2),
    )
    prelu_layer.build(inputs.shape)

    weights = np.random.default_rng(2).random((1, 1, 3))
    prelu_layer.alpha.assign(weights)
    ref_out = np_prelu(inputs, weights)
    np.testing.assert_allclose(
        to_numpy(prelu_layer(inputs)), ref_out, rtol=1e-6, atol=1e-6
    )


def test_alpha_initializer_none_is_an_error():
    # Keras's get(None) is None, which add_weight would replace with
    # glorot_uniform; newer Keras raises, and so do we.
    with pytest.raises(ValueError, match=r"Received: alpha_initializer=None"):
        PReLU(alpha_initializer=None)
