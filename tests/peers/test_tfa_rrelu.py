"""TensorFlow Addons' RReLU tests, ported, on every backend.

Source: tensorflow/addons, `tensorflow_addons/activations/tests/rrelu_test.py`
at commit d208d752 (the last commit of the archived repository): both
tests, `test_rrelu_old` and `test_rrelu`, for float16, float32 and
float64, in training and inference. Adapted:

- `tfa.activations.rrelu(x, lower, upper, training, seed)` is
  `keras_aprelu.activations.rrelu`, and the same cases run through the
  `keras_aprelu.RReLU` layer.
- Inference: TFA's expected values are kept, with TFA's tolerances
  (`assert_allclose_according_to_type`: 1e-6, and 1e-3 for float16).
- Training: TFA's expected values are draws from TensorFlow's random
  stream (`tf.random.set_seed(111111)`, or a `tf.random.Generator`), which
  no other backend reproduces. Instead, the slopes of many draws are
  tested against U(lower, upper) with a Kolmogorov-Smirnov test, and
  TFA's own training values are checked to lie where our draws can fall.
"""

import numpy as np
import pytest
import scipy.stats

from keras_aprelu import RReLU
from keras_aprelu import activations
from tests.backend_testing import to_numpy

X = [-2.0, -1.0, 0.0, 1.0, 2.0]
LOWER, UPPER = 0.1, 0.2
INFERENCE = [-0.30000001192092896, -0.15000000596046448, 0, 1, 2]
# TFA's expected training outputs, test_rrelu_old then test_rrelu.
TFA_TRAINING = {
    "float16": ([-0.288330078, -0.124206543, 0, 1, 2], [-0.3826, -0.165, 0, 1, 2]),
    "float32": (
        [-0.26851666, -0.116421416, 0, 1, 2],
        [-0.282151192, -0.199812651, 0, 1, 2],
    ),
    "float64": (
        [-0.3481333923206531, -0.17150176242558851, 0, 1, 2],
        [-0.25720977, -0.1221586, 0, 1, 2],
    ),
}
TOLERANCE = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-6}
DTYPES = ["float16", "float32", "float64"]


def _functional(x, training, seed=None):
    return activations.rrelu(x, LOWER, UPPER, training=training, seed=seed)


def _layer(x, training, seed=None):
    # The layer computes in its own dtype, as Keras layers do.
    return RReLU(LOWER, UPPER, seed=seed, dtype=str(x.dtype))(x, training=training)


@pytest.mark.parametrize("rrelu", [_functional, _layer], ids=["function", "layer"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_inference(rrelu, dtype):
    y = to_numpy(rrelu(np.array(X, dtype), training=False))
    assert y.dtype == dtype
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(y, INFERENCE, rtol=tol, atol=tol)


@pytest.mark.parametrize("rrelu", [_functional, _layer], ids=["function", "layer"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_training(rrelu, dtype):
    y = to_numpy(rrelu(np.array(X, dtype), training=True, seed=111111))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[2:], [0, 1, 2])
    slopes = y[:2] / np.array(X[:2])
    assert np.all((slopes >= LOWER) & (slopes <= UPPER))

    # The slopes of 20,000 draws follow U(lower, upper). With float16's
    # rounding the statistic stays far below the 0.1 % critical value
    # (1.95 / sqrt(20000) = 0.014).
    many = to_numpy(rrelu(-np.ones(20000, dtype), training=True, seed=7))
    result = scipy.stats.kstest(
        -many.astype("float64"), "uniform", args=(LOWER, UPPER - LOWER)
    )
    assert result.pvalue > 1e-3, result

    # TFA's own draws are values ours can take: slopes within the bounds
    # (up to float16 rounding).
    for expected in TFA_TRAINING[dtype]:
        tfa_slopes = np.array(expected[:2]) / np.array(X[:2])
        tol = TOLERANCE[dtype]
        assert np.all((tfa_slopes >= LOWER - tol) & (tfa_slopes <= UPPER + tol))
        np.testing.assert_array_equal(expected[2:], y[2:])
