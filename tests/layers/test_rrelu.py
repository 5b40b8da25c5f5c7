import keras
import numpy as np
import pytest

from keras_aprelu import RReLU
from keras_aprelu import activations
from tests.backend_testing import numerical_vjp
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.layer_testing import run_layer_test


def test_layer_contract():
    run_layer_test(
        RReLU,
        {"lower": 0.1, "upper": 0.4, "seed": 3},
        (3, 4, 5),
        expected_output_shape=(3, 4, 5),
        expected_num_trainable_weights=0,
        expected_num_seed_generators=1,
    )


def test_inference_uses_the_mean_slope():
    x = np.linspace(-3, 3, 13, dtype="float32").reshape(1, 13)
    expected = np.where(x >= 0, x, (0.1 + 0.4) / 2 * x)
    np.testing.assert_allclose(to_numpy(RReLU(0.1, 0.4)(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(
        to_numpy(RReLU(0.1, 0.4)(x, training=False)), expected, rtol=1e-6
    )
    # The defaults are torch.nn.RReLU's: slope (1/8 + 1/3) / 2 in inference.
    np.testing.assert_allclose(
        to_numpy(RReLU()(x)), np.where(x >= 0, x, 11 / 48 * x), rtol=1e-6
    )


def test_training_draws_one_slope_per_element_within_bounds():
    x = np.concatenate([-np.ones((1, 20000)), np.ones((1, 10))], axis=1)
    y = to_numpy(RReLU(0.2, 0.5, seed=1)(x.astype("float32"), training=True))
    slopes = -y[0, :20000]
    assert slopes.min() >= 0.2 and slopes.max() <= 0.5
    # U(0.2, 0.5): mean 0.35, standard deviation 0.3 / sqrt(12) = 0.0866.
    assert abs(slopes.mean() - 0.35) < 0.005
    assert abs(slopes.std() - 0.3 / np.sqrt(12)) < 0.005
    np.testing.assert_array_equal(y[0, 20000:], 1.0)


def test_seed_makes_it_reproducible():
    x = -np.ones((2, 50), "float32")
    a = [to_numpy(RReLU(seed=7)(x, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    layer = RReLU(seed=7)
    first, second = layer(x, training=True), layer(x, training=True)
    assert not np.array_equal(to_numpy(first), to_numpy(second))  # new draws
    assert not np.array_equal(a[0], to_numpy(RReLU(seed=8)(x, training=True)))


def test_lower_equal_upper_is_leaky_relu():
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    y = to_numpy(RReLU(0.3, 0.3)(x, training=True))
    np.testing.assert_allclose(y, np.where(x >= 0, x, 0.3 * x), rtol=1e-6)


def test_training_gradient_is_the_drawn_slope():
    x = np.random.default_rng(1).normal(size=(3, 8))

    def f(x):  # an int seed draws the same slopes at every call
        return activations.rrelu(x, 0.1, 0.3, training=True, seed=5)

    upstream = np.random.default_rng(2).normal(size=x.shape)
    (analytic,) = vjp(f, [x], upstream)
    (numerical,) = numerical_vjp(f, [x], upstream)
    np.testing.assert_allclose(analytic, numerical, rtol=1e-6, atol=1e-7)
    slopes = to_numpy(f(keras.ops.convert_to_tensor(x))) / x
    np.testing.assert_allclose(analytic, slopes * upstream, rtol=1e-6)


def test_nan_and_inf_propagate():
    x = np.array([[np.nan, np.inf, -np.inf, -1.0]], "float32")
    y = to_numpy(RReLU()(x))
    np.testing.assert_array_equal(
        y, np.array([[np.nan, np.inf, -np.inf, -11 / 48]], "float32")
    )
    y = to_numpy(RReLU(seed=0)(x, training=True))
    assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and y[0, 2] == -np.inf


@pytest.mark.parametrize(
    "lower, upper",
    [(-0.1, 0.3), (0.5, 0.2), (0.1, float("inf")), ("a", 0.3), (float("nan"), 0.3)],
)
def test_bad_bounds(lower, upper):
    with pytest.raises(
        ValueError,
        match=r"`lower` and `upper` must be numbers with 0 <= lower <= upper",
    ) as info:
        RReLU(lower, upper)
    assert str(info.value).endswith(f"Received: lower={lower!r}, upper={upper!r}")
    with pytest.raises(ValueError, match=r"Received: lower="):
        activations.rrelu(np.zeros((1, 2)), lower, upper)


def test_keras_training_flag_reaches_the_layer():
    # Inside fit the layer is random; in predict it is not.
    inputs = keras.Input((64,))
    outputs = RReLU(0.0, 1.0, seed=2)(inputs)
    model = keras.Model(inputs, outputs)
    x = -np.ones((2, 64), "float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), -0.5)
    y = to_numpy(model(x, training=True))
    assert y.std() > 0.1


def test_fit_is_reproducible_from_the_seed():
    # The draws go through the layer's SeedGenerator, whose state is a
    # variable: inside a compiled train step (XLA on TensorFlow, jit on JAX)
    # as in eager mode, the same seed gives the same training.
    x = np.random.default_rng(4).normal(size=(16, 8)).astype("float32")
    y = np.random.default_rng(5).normal(size=(16, 1)).astype("float32")

    def train(seed):
        keras.utils.set_random_seed(0)  # the same initial weights
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(8), RReLU(0.0, 1.0, seed=seed)]
            + [keras.layers.Dense(1)]
        )
        # Compiled where the backend compiles: torch.compile is out of scope.
        jit = keras.config.backend() != "torch"
        model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        return [to_numpy(w) for w in model.weights]

    first, again, other = train(3), train(3), train(4)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))
