import keras
import numpy as np
import pytest

from keras_aprelu import APReLU
from keras_aprelu import PReLU
from keras_aprelu import activations
from tests.backend_testing import layer_function
from tests.backend_testing import numerical_vjp
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.layer_testing import run_layer_test


def reference(x, alpha):
    return np.where(x > 0, x, alpha * x)


@pytest.mark.parametrize(
    "kwargs, input_shape, weights",
    [
        ({}, (2, 5, 5, 3), 3),
        ({"axis": None}, (2, 5, 5, 3), 1),
        ({"axis": 1}, (2, 3, 5, 5), 3),
        ({"shared_axes": [1, 2]}, (2, 5, 5, 3), 3),
        ({}, (3, 4), 4),
    ],
)
def test_layer_contract(kwargs, input_shape, weights):
    run_layer_test(
        PReLU,
        kwargs,
        input_shape,
        expected_output_shape=input_shape,
        expected_num_trainable_weights=1,
        expected_num_trainable_params=weights,
    )


def test_values_match_numpy_and_keras_prelu():
    x = np.random.default_rng(0).normal(size=(4, 6, 7, 3)).astype("float32")
    alpha = np.array([0.1, -0.3, 1.7], dtype="float32")
    ours = PReLU(alpha_initializer=keras.initializers.Constant(alpha))
    theirs = keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(alpha), shared_axes=[1, 2]
    )
    np.testing.assert_allclose(to_numpy(ours(x)), reference(x, alpha), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(theirs(x)), rtol=1e-6)


@pytest.mark.parametrize("shared_axes", [[-1], [-3, -2], [2]])
def test_negative_shared_axes_count_from_the_end(shared_axes):
    # keras.layers.PReLU indexes its parameter shape with `axis - 1`, so -1
    # lands on the second-to-last axis; ours counts from the input's end.
    layer = PReLU(shared_axes=shared_axes)
    layer.build((None, 4, 5, 6))
    positive = [a % 4 for a in shared_axes]
    expected = tuple(
        1 if a in positive else s for a, s in zip(range(1, 4), (4, 5, 6), strict=True)
    )
    assert tuple(layer.alpha.shape) == expected
    keras_layer = keras.layers.PReLU(shared_axes=positive)
    keras_layer.build((None, 4, 5, 6))
    assert tuple(keras_layer.alpha.shape) == expected


def test_variable_spatial_size_in_one_model():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, PReLU()(inputs))
    for shape in [(1, 4, 4, 3), (2, 9, 5, 3)]:
        x = np.random.default_rng(1).normal(size=shape).astype("float32")
        np.testing.assert_allclose(to_numpy(model(x)), reference(x, 0.25), rtol=1e-6)


def test_gradients_match_keras_prelu():
    x = np.random.default_rng(2).normal(size=(3, 4, 4, 2)).astype("float32")
    alpha = keras.initializers.Constant([0.2, 0.6])
    ours = PReLU(alpha_initializer=alpha)
    theirs = keras.layers.PReLU(alpha_initializer=alpha, shared_axes=[1, 2])
    upstream = np.random.default_rng(3).normal(size=x.shape).astype("float32")
    grads = []
    for layer in (ours, theirs):
        layer.build(x.shape)
        grads.append(vjp(*layer_function(layer, x), upstream))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-6)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-5)


@pytest.mark.parametrize("alpha_shape", [(), (3,), (1, 1, 3), (2, 4, 1, 3)])
def test_numerical_gradients(alpha_shape):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 4, 5, 3))
    alpha = rng.uniform(-0.5, 1.5, size=alpha_shape)
    upstream = rng.normal(size=x.shape)
    analytic = vjp(activations.prelu, [x, alpha], upstream)
    numerical = numerical_vjp(activations.prelu, [x, alpha], upstream)
    for a, n in zip(analytic, numerical, strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-6)


def test_gradient_at_zero_is_alpha():
    # The kink: every backend gives the input gradient alpha at x == 0.
    x = np.array([[0.0, -0.0, 1.0, -1.0]])
    (grad,) = vjp(lambda x: activations.prelu(x, 0.3), [x], np.ones_like(x))
    np.testing.assert_allclose(grad, [[0.3, 0.3, 1.0, 0.3]], rtol=1e-6)


def test_nan_and_inf_propagate():
    x = np.array([[np.nan, np.inf, -np.inf, -2.0, 3.0]], dtype="float32")
    np.testing.assert_array_equal(to_numpy(PReLU()(x)), reference(x, np.float32(0.25)))


def test_regularizer_and_constraint_apply():
    layer = PReLU(
        alpha_initializer=2.0,
        alpha_regularizer=keras.regularizers.L2(0.5),
        alpha_constraint=keras.constraints.MaxNorm(1.0, axis=[]),
    )
    layer(np.ones((1, 3), "float32"))
    np.testing.assert_allclose(to_numpy(layer.losses[0]), 0.5 * 3 * 4.0)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    model.fit(-np.ones((2, 3)), np.zeros((2, 3)), verbose=0)
    np.testing.assert_allclose(to_numpy(layer.alpha), np.ones((3,)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"axis": 1.5}, r"`axis` must be an int or None\. Received: axis=1\.5"),
        ({"axis": 2, "shared_axes": [1]}, r"Pass either `axis` or `shared_axes`"),
        (
            {"shared_axes": ["a"]},
            r"`shared_axes` must be an int or a list of ints\. "
            r"Received: shared_axes=\['a'\]",
        ),
        ({"shared_axes": "a"}, r"Received: shared_axes='a'"),
        ({"shared_axes": [1, True]}, r"Received: shared_axes=\[1, True\]"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PReLU(**kwargs)


def test_bad_shapes():
    with pytest.raises(
        ValueError, match=r"`axis` must index a non-batch axis .* axis=3"
    ):
        PReLU(axis=3)(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"`axis` must index .* Received: axis=0"):
        PReLU(axis=0)(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"expects inputs of rank >= 2"):
        PReLU()(np.zeros((3,)))
    with pytest.raises(ValueError, match=r"sizes must be known"):
        PReLU(shared_axes=[1]).build((None, 4, None))
    layer = PReLU()
    layer(np.zeros((1, 4, 4)))
    with pytest.raises(
        ValueError, match=r"was built for inputs of shape \(None, None, 4\)"
    ):
        layer(np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match=r"Received: inputs.shape=\(1, 4\)"):
        layer(np.zeros((1, 4)))


@pytest.mark.parametrize("layer_class", [PReLU, APReLU], ids=["PReLU", "APReLU"])
def test_int_inputs_are_cast_to_the_compute_dtype_on_every_backend(layer_class):
    # They failed inside the op on TensorFlow and PyTorch, and worked on JAX.
    x = np.arange(-8, 8, dtype="int32").reshape(2, 2, 2, 2)
    layer = layer_class()
    as_float = to_numpy(layer(x.astype("float32")))
    as_int = layer(x)
    assert keras.backend.standardize_dtype(as_int.dtype) == "float32"
    np.testing.assert_array_equal(to_numpy(as_int), as_float)
    assert np.any(as_float < 0)  # the negative slope was applied
