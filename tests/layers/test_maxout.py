import numpy as np
import pytest

from keras_aprelu import Maxout
from keras_aprelu import activations
from tests.backend_testing import numerical_vjp
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.layer_testing import run_layer_test


def numpy_maxout(x, units, axis, grouping):
    axis = axis % x.ndim
    k = x.shape[axis] // units
    split = (units, k) if grouping == "contiguous" else (k, units)
    grouped = x.reshape(x.shape[:axis] + split + x.shape[axis + 1 :])
    return grouped.max(axis=axis + 1 if grouping == "contiguous" else axis)


@pytest.mark.parametrize(
    "kwargs, input_shape, output_shape",
    [
        ({"num_units": 3}, (2, 4, 4, 6), (2, 4, 4, 3)),
        ({"num_units": 2, "grouping": "strided"}, (2, 6), (2, 2)),
        ({"num_units": 2, "axis": 1}, (2, 4, 5), (2, 2, 5)),
    ],
)
def test_layer_contract(kwargs, input_shape, output_shape):
    run_layer_test(
        Maxout,
        kwargs,
        input_shape,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=0,
    )


@pytest.mark.parametrize("grouping", ["contiguous", "strided"])
@pytest.mark.parametrize(
    "axis, shape", [(-1, (3, 5, 12)), (1, (3, 12, 5)), (2, (2, 3, 12, 2))]
)
def test_values_match_numpy(grouping, axis, shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    expected = numpy_maxout(x, 4, axis, grouping)
    np.testing.assert_array_equal(
        to_numpy(Maxout(4, axis=axis, grouping=grouping)(x)), expected
    )


def test_strided_grouping_is_tensorflow_addons_maxout():
    # tfa.layers.Maxout(2) reshaped the 4 channels to (2, 2) = (k, units) and
    # took the max over k: unit j got channels j and j + 2. On [1, 5, 2, 4]
    # it returned [max(1, 2), max(5, 4)] = [2, 5]; contiguous groups give
    # [max(1, 5), max(2, 4)] = [5, 4].
    x = np.array([[1.0, 5.0, 2.0, 4.0]], "float32")
    np.testing.assert_array_equal(to_numpy(Maxout(2, grouping="strided")(x)), [[2, 5]])
    np.testing.assert_array_equal(to_numpy(Maxout(2)(x)), [[5, 4]])
    # The same along axis 1 of a channels-first batch.
    x_first = np.transpose(np.tile(x, (3, 1))[None], (0, 2, 1))  # (1, 4, 3)
    np.testing.assert_array_equal(
        to_numpy(Maxout(2, axis=1, grouping="strided")(x_first))[0, :, 0], [2, 5]
    )


@pytest.mark.parametrize("grouping", ["contiguous", "strided"])
@pytest.mark.parametrize("axis", [-1, 1])
def test_numerical_gradients(grouping, axis):
    # A permutation: distinct values, so the max is never tied.
    x = np.random.default_rng(2).permutation(48).reshape(2, 4, 6) / 7.0

    def fn(x):
        return activations.maxout(x, 2, axis=axis, grouping=grouping)

    upstream = np.random.default_rng(3).normal(size=to_numpy(fn(x)).shape)
    (analytic,) = vjp(fn, [x], upstream)
    (numerical,) = numerical_vjp(fn, [x], upstream)
    np.testing.assert_allclose(analytic, numerical, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("grouping", ["contiguous", "strided"])
def test_ties_send_the_whole_gradient_to_the_first_winner(grouping):
    x = np.array([[2.0, 2.0, 1.0, 3.0, 0.0, 3.0]], "float32")
    (grad,) = vjp(lambda x: Maxout(2, grouping=grouping)(x), [x], np.ones((1, 2)))
    # contiguous groups: channels (0, 1, 2) = (2, 2, 1), a tie won by 0, and
    # (3, 4, 5) = (3, 0, 3), won by 3; strided: (0, 2, 4) = (2, 1, 0), won
    # by 0, and (1, 3, 5) = (2, 3, 3), a tie won by 3.
    np.testing.assert_array_equal(grad, [[1, 0, 0, 1, 0, 0]])


def test_nan_does_not_leak_across_rows():
    x = np.random.default_rng(3).normal(size=(2, 6)).astype("float32")
    clean = to_numpy(Maxout(3)(x))
    x[0, 0] = np.nan
    x[0, 3] = np.inf
    y = to_numpy(Maxout(3)(x))
    np.testing.assert_array_equal(y[1], clean[1])
    assert y[0, 1] == np.inf


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"num_units": 0},
            r"`num_units` must be a positive int\. Received: num_units=0",
        ),
        ({"num_units": "2"}, r"Received: num_units='2'"),
        (
            {"num_units": 2, "grouping": "random"},
            r'`grouping` must be "contiguous" or "strided"\. '
            r"Received: grouping='random'",
        ),
        (
            {"num_units": 2, "axis": None},
            r"`axis` must be an int\. Received: axis=None",
        ),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Maxout(**kwargs)


def test_bad_shapes():
    with pytest.raises(
        ValueError,
        match=r"10 channels cannot be split into 3 equal groups\. "
        r"Received: num_units=3, channels=10",
    ):
        Maxout(3)(np.zeros((1, 10)))
    with pytest.raises(ValueError, match=r"Received: num_units=4, channels=6"):
        activations.maxout(np.zeros((1, 6)), 4)
    with pytest.raises(ValueError, match=r"expects inputs of rank >= 2"):
        Maxout(1)(np.zeros((4,)))
    layer = Maxout(2)
    layer(np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match=r"Received: inputs.shape=\(1, 3, 6\)"):
        layer(np.zeros((1, 3, 6)))
