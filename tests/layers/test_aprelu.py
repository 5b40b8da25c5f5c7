import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aprelu import APReLU
from keras_aprelu import activations
from tests.layer_testing import run_layer_test


def numpy_aprelu(layer, x, training):
    """The official structure (paper Fig. 3a), from the layer's own weights."""
    x = np.asarray(x, dtype="float64")
    axis = layer.axis % x.ndim
    pool = tuple(a for a in range(1, x.ndim) if a != axis)
    negative = np.minimum(x, 0).mean(axis=pool) if pool else np.minimum(x, 0)
    positive = np.maximum(x, 0).mean(axis=pool) if pool else np.maximum(x, 0)
    z = np.concatenate([negative, positive], axis=-1)

    def dense(z, d):
        return z @ np.asarray(d.kernel, "float64") + np.asarray(d.bias, "float64")

    def batch_norm(z, bn):
        if training:
            mean, var = z.mean(0), z.var(0)
        else:
            mean, var = np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)
        return (z - mean) / np.sqrt(var + bn.epsilon) * np.asarray(
            bn.gamma
        ) + np.asarray(bn.beta)

    z = np.maximum(batch_norm(dense(z, layer.dense_1), layer.batch_norm_1), 0)
    z = batch_norm(dense(z, layer.dense_2), layer.batch_norm_2)
    alpha = 1 / (1 + np.exp(-z))
    shape = [1] * x.ndim
    shape[0], shape[axis] = x.shape[0], x.shape[axis]
    return np.maximum(x, 0) + alpha.reshape(shape) * np.minimum(x, 0), alpha


def randomize(layer, seed=0):
    """Non-trivial batch-norm weights and statistics, so that they matter."""
    rng = np.random.default_rng(seed)
    for bn in (layer.batch_norm_1, layer.batch_norm_2):
        n = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 2, n))
        bn.beta.assign(rng.normal(size=n))
        bn.moving_mean.assign(rng.normal(size=n))
        bn.moving_variance.assign(rng.uniform(0.5, 2, n))
    for dense in (layer.dense_1, layer.dense_2):
        dense.bias.assign(rng.normal(size=dense.bias.shape))


def sample(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize(
    "kwargs, input_shape, channels",
    [
        ({}, (4, 6, 6, 4), 4),
        ({}, (4, 5), 5),
        ({}, (4, 7, 3), 3),
        ({}, (3, 2, 3, 3, 2), 2),
        ({"axis": 1}, (4, 3, 5, 5), 3),
    ],
)
def test_layer_contract(kwargs, input_shape, channels):
    run_layer_test(
        APReLU,
        kwargs,
        input_shape,
        expected_output_shape=input_shape,
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=4,
        expected_num_trainable_params=3 * channels**2 + 6 * channels,
    )


def test_parameter_counts():
    layer = APReLU()
    layer.build((None, 8, 8, 16))
    assert layer.count_params() == 3 * 16**2 + 6 * 16 + 4 * 16
    narrow = APReLU(hidden_units=4)
    narrow.build((None, 8, 8, 16))
    trainable = sum(int(np.prod(w.shape)) for w in narrow.trainable_weights)
    # Dense(2C -> H), BN(H), Dense(H -> C), BN(C).
    assert trainable == (32 * 4 + 4) + 2 * 4 + (4 * 16 + 16) + 2 * 16


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "axis, shape",
    [(-1, (5, 6, 7, 3)), (1, (5, 3, 4, 6)), (-1, (5, 4)), (-1, (5, 9, 3))],
)
def test_values_match_numpy_reference(axis, shape, training):
    layer = APReLU(axis=axis)
    x = sample(shape)
    layer.build(x.shape)
    randomize(layer)
    expected, alpha = numpy_aprelu(layer, x, training)
    np.testing.assert_allclose(
        layer(x, training=training), expected, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        layer.slopes(x, training=training), alpha, rtol=1e-4, atol=1e-6
    )


def test_slopes_differ_per_sample_and_lie_in_unit_interval():
    layer = APReLU()
    x = sample((6, 5, 5, 4))
    x[3] *= 5.0  # a sample with a different scale gets different slopes
    alpha = np.asarray(layer.slopes(x))
    assert alpha.shape == (6, 4)
    assert np.all((alpha > 0) & (alpha < 1))
    assert np.abs(alpha[3] - alpha[0]).max() > 1e-3


def test_unknown_spatial_sizes():
    inputs = keras.Input((None, None, 3))
    layer = APReLU()
    model = keras.Model(inputs, layer(inputs))
    randomize(layer)
    for shape in [(2, 4, 4, 3), (2, 7, 3, 3)]:
        x = sample(shape, seed=shape[1])
        expected, _ = numpy_aprelu(layer, x, training=False)
        np.testing.assert_allclose(model(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "shape, axis", [((3, 4, 5, 2), -1), ((3, 2, 4), 1), ((4, 3), -1)]
)
def test_numerical_gradients(shape, axis, training):
    keras.config.set_floatx("float64")
    layer = APReLU(axis=axis, dtype="float64")
    x = np.random.default_rng(5).normal(size=shape)
    layer.build(shape)
    randomize(layer)
    upstream = tf.constant(np.random.default_rng(6).normal(size=shape))

    def loss(x):
        return tf.reduce_sum(layer(x, training=training) * upstream)

    # With respect to the inputs: the custom gradients of the pooling and
    # of the output stage, and the path through the sub-network.
    theoretical, numerical = tf.test.compute_gradient(loss, [tf.constant(x)])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)

    # With respect to every weight, by central differences.
    with tf.GradientTape() as tape:
        value = loss(tf.constant(x))
    analytic = tape.gradient(value, layer.trainable_weights)
    eps = 1e-6
    for weight, grad in zip(layer.trainable_weights, analytic, strict=True):
        base = weight.numpy()
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * eps
                weight.assign(shifted)
                numeric[index] += sign * float(loss(tf.constant(x))) / (2 * eps)
        weight.assign(base)
        grad = np.zeros_like(base) if grad is None else np.asarray(grad)
        np.testing.assert_allclose(
            grad, numeric, rtol=1e-5, atol=1e-6, err_msg=weight.path
        )


def test_functional_form_gradients():
    rng = np.random.default_rng(7)
    x = tf.constant(rng.normal(size=(2, 3, 4)))
    alpha = tf.constant(rng.uniform(0, 1, size=(2, 4)))
    theoretical, numerical = tf.test.compute_gradient(activations.aprelu, [x, alpha])
    for t, n in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(t, n, rtol=1e-6, atol=1e-6)


def test_nan_and_inf_stay_in_their_sample():
    layer = APReLU()
    x = sample((3, 4, 4, 2))
    clean = np.asarray(layer(x[1:]))
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 1, 1] = np.inf
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y[1:], clean, rtol=1e-6)
    assert np.isnan(y[0, 0, 0, 0])
    assert not np.isfinite(y[0]).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"hidden_units": 0},
            r"`hidden_units` must be a positive int\. Received: hidden_units=0",
        ),
        ({"hidden_units": 2.5}, r"Received: hidden_units=2\.5"),
        ({"axis": "channels"}, r"`axis` must be an int\. Received: axis='channels'"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        APReLU(**kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"expects inputs of rank >= 2"):
        APReLU()(np.zeros((4,)))
    with pytest.raises(ValueError, match=r"`axis` must index a non-batch axis.*axis=0"):
        APReLU(axis=0)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"channel axis 3 to be known"):
        APReLU().build((None, 4, 4, None))
    layer = APReLU()
    layer(np.zeros((2, 4, 4, 3)))
    with pytest.raises(
        ValueError, match=r"built for inputs of shape \(None, None, None, 3\)"
    ):
        layer(np.zeros((2, 4, 4, 5)))
    with pytest.raises(ValueError, match=r"Received: inputs.shape=\(2, 4, 4, 5\)"):
        layer.slopes(np.zeros((2, 4, 4, 5)))
    with pytest.raises(ValueError, match=r"Received: inputs.shape=\(2, 3\)"):
        layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"`alpha` must have shape \(batch, 3\)"):
        activations.aprelu(np.zeros((2, 4, 3)), np.zeros((2, 4)))
