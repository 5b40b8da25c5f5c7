import keras
import numpy as np
import pytest

from keras_aprelu import APReLU
from keras_aprelu import activations
from tests.backend_testing import backend
from tests.backend_testing import layer_function
from tests.backend_testing import numerical_vjp
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.layer_testing import run_layer_test


def numpy_aprelu(layer, x, training):
    """The official structure (paper Fig. 3a), from the layer's own weights,
    with the layer's normalization in the sub-network."""
    x = np.asarray(x, dtype="float64")
    axis = layer.axis % x.ndim
    pool = tuple(a for a in range(1, x.ndim) if a != axis)
    negative = np.minimum(x, 0).mean(axis=pool) if pool else np.minimum(x, 0)
    positive = np.maximum(x, 0).mean(axis=pool) if pool else np.maximum(x, 0)
    z = np.concatenate([negative, positive], axis=-1)

    def value(weight):
        return to_numpy(weight).astype("float64")

    def dense(z, d):
        return z @ value(d.kernel) + value(d.bias)

    def normalize(z, norm):
        if layer.normalization == "none":
            return z
        if layer.normalization == "layer":
            mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        elif training:
            assert layer.normalization == "batch", "renorm corrects in training"
            mean, var = z.mean(0), z.var(0)
        else:
            mean, var = value(norm.moving_mean), value(norm.moving_variance)
        scaled = (z - mean) / np.sqrt(var + norm.epsilon)
        return scaled * value(norm.gamma) + value(norm.beta)

    norm_1, norm_2 = layer.normalization_layers()
    z = np.maximum(normalize(dense(z, layer.dense_1), norm_1), 0)
    z = normalize(dense(z, layer.dense_2), norm_2)
    alpha = 1 / (1 + np.exp(-z))
    shape = [1] * x.ndim
    shape[0], shape[axis] = x.shape[0], x.shape[axis]
    return np.maximum(x, 0) + alpha.reshape(shape) * np.minimum(x, 0), alpha


def randomize(layer, seed=0):
    """Non-trivial weights and normalization statistics, so that they
    matter."""
    rng = np.random.default_rng(seed)
    for norm in layer.normalization_layers():
        if not norm.weights:  # normalization="none"
            continue
        n = norm.gamma.shape[0]
        norm.gamma.assign(rng.uniform(0.5, 2, n))
        norm.beta.assign(rng.normal(size=n))
        if hasattr(norm, "moving_mean"):
            norm.moving_mean.assign(rng.normal(size=n))
            norm.moving_variance.assign(rng.uniform(0.5, 2, n))
            if getattr(norm, "renorm", False):
                norm.moving_stddev.assign(np.sqrt(to_numpy(norm.moving_variance)))
    for dense in (layer.dense_1, layer.dense_2):
        # Drawn here, not by the initializer: the same on every backend.
        scale = np.sqrt(2 / dense.kernel.shape[0])
        dense.kernel.assign(rng.normal(scale=scale, size=dense.kernel.shape))
        dense.bias.assign(rng.normal(size=dense.bias.shape))


def sample(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# (normalization, trainable weights, statistics, trainable parameters for C).
NORMALIZATION_WEIGHTS = {
    "layer": (8, 0, lambda c: 3 * c**2 + 6 * c),
    "none": (4, 0, lambda c: 3 * c**2 + 2 * c),
    "batch": (8, 4, lambda c: 3 * c**2 + 6 * c),
    "batch_renorm": (8, 10, lambda c: 3 * c**2 + 6 * c),
}


@pytest.mark.parametrize(
    "kwargs, input_shape, channels",
    [
        ({}, (4, 6, 6, 4), 4),
        ({}, (4, 5), 5),
        ({}, (4, 7, 3), 3),
        ({}, (3, 2, 3, 3, 2), 2),
        ({"axis": 1}, (4, 3, 5, 5), 3),
        ({"normalization": "layer"}, (4, 6, 6, 4), 4),
        ({"normalization": "batch_renorm"}, (4, 6, 6, 4), 4),
        # The authors' TFLearn configuration (README, "Evidence").
        (
            {
                "normalization": "batch",
                "epsilon": 1e-5,
                "kernel_regularizer": keras.regularizers.L2(5e-5),
            },
            (4, 6, 6, 4),
            4,
        ),
    ],
)
def test_layer_contract(kwargs, input_shape, channels):
    trainable, statistics, params = NORMALIZATION_WEIGHTS[
        kwargs.get("normalization", "none")
    ]
    run_layer_test(
        APReLU,
        kwargs,
        input_shape,
        expected_output_shape=input_shape,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=statistics,
        expected_num_trainable_params=params(channels),
    )


def test_parameter_counts():
    layer = APReLU()
    layer.build((None, 8, 8, 16))
    assert layer.count_params() == 3 * 16**2 + 2 * 16
    paper = APReLU(normalization="batch")
    paper.build((None, 8, 8, 16))
    assert paper.count_params() == 3 * 16**2 + 6 * 16 + 4 * 16
    narrow = APReLU(hidden_units=4, normalization="layer")
    narrow.build((None, 8, 8, 16))
    trainable = sum(int(np.prod(w.shape)) for w in narrow.trainable_weights)
    # Dense(2C -> H), LayerNorm(H), Dense(H -> C), LayerNorm(C).
    assert trainable == (32 * 4 + 4) + 2 * 4 + (4 * 16 + 16) + 2 * 16


@pytest.mark.parametrize("normalization", ["layer", "none", "batch"])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "axis, shape",
    [(-1, (5, 6, 7, 3)), (1, (5, 3, 4, 6)), (-1, (5, 4)), (-1, (5, 9, 3))],
)
def test_values_match_numpy_reference(axis, shape, training, normalization):
    layer = APReLU(axis=axis, normalization=normalization)
    x = sample(shape)
    layer.build(x.shape)
    randomize(layer)
    expected, alpha = numpy_aprelu(layer, x, training)
    np.testing.assert_allclose(
        to_numpy(layer(x, training=training)), expected, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        to_numpy(layer.slopes(x, training=training)), alpha, rtol=1e-4, atol=1e-6
    )


def test_batch_renorm_infers_with_its_moving_statistics():
    layer = APReLU(normalization="batch_renorm")
    x = sample((5, 6, 3))
    layer.build(x.shape)
    randomize(layer)
    expected, alpha = numpy_aprelu(layer, x, training=False)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("normalization", ["layer", "none"])
def test_default_slopes_do_not_depend_on_the_batch(normalization):
    # A sample's slopes are the same alone, in any batch, in either mode.
    layer = APReLU(normalization=normalization)
    x = sample((6, 5, 4))
    layer.build(x.shape)
    randomize(layer)
    together = to_numpy(layer.slopes(x, training=True))
    for i in range(len(x)):
        alone = to_numpy(layer.slopes(x[i : i + 1], training=False))
        np.testing.assert_allclose(alone[0], together[i], rtol=1e-5, atol=1e-6)
    assert layer.non_trainable_weights == []


@pytest.mark.parametrize("normalization", ["layer", "batch"])
def test_epsilon_reaches_both_normalizations(normalization):
    # In training mode on two samples 1 % apart, the batch variances are
    # about 1e-5 of the values', so epsilon sets much of the scale: the two
    # values must give different slopes, each matching the reference. Layer
    # norm is checked on inputs whose hidden units are nearly equal.
    x = sample((1, 4, 4, 3)) * np.float32([1, 1.01]).reshape(2, 1, 1, 1)
    slopes = {}
    for epsilon in (1e-3, 1e-5):
        layer = APReLU(normalization=normalization, epsilon=epsilon)
        layer.build(x.shape)
        randomize(layer)
        if normalization == "layer":
            layer.dense_1.kernel.assign(1e-3 * to_numpy(layer.dense_1.kernel))
            layer.dense_1.bias.assign(np.zeros(layer.dense_1.bias.shape))
        norms = layer.normalization_layers()
        assert norms[0].epsilon == norms[1].epsilon == epsilon
        _, expected = numpy_aprelu(layer, x, training=True)
        slopes[epsilon] = to_numpy(layer.slopes(x, training=True))
        np.testing.assert_allclose(slopes[epsilon], expected, rtol=1e-4, atol=1e-6)
        assert APReLU.from_config(layer.get_config()).epsilon == epsilon
    assert np.abs(slopes[1e-3] - slopes[1e-5]).max() > 0.005


def test_defaults():
    layer = APReLU()
    assert (layer.normalization, layer.epsilon) == ("none", 1e-3)


def test_release_0_1_0_configs_load_as_the_paper_sub_network():
    # Release 0.1.0 saved no `normalization` and named epsilon
    # `batch_norm_epsilon`; its files hold batch norms.
    config = APReLU(name="act").get_config()
    del config["normalization"], config["epsilon"]
    config["batch_norm_epsilon"] = 1e-5
    layer = APReLU.from_config(config)
    assert (layer.normalization, layer.epsilon) == ("batch", 1e-5)


def test_batch_norm_epsilon_is_deprecated_for_epsilon():
    with pytest.warns(DeprecationWarning, match=r"`batch_norm_epsilon` is now"):
        layer = APReLU(batch_norm_epsilon=1e-5)
    assert layer.epsilon == 1e-5


def test_slopes_differ_per_sample_and_lie_in_unit_interval():
    layer = APReLU()
    x = sample((6, 5, 5, 4))
    x[3] *= 5.0  # a sample with a different scale gets different slopes
    alpha = to_numpy(layer.slopes(x))
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
        np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-4, atol=1e-5)


# Keras's BatchNormalization computes float64 in float32 on JAX and PyTorch
# (Keras promotes float64 with "float32" to float32). There the central
# differences take a wider step, short of the ReLU kinks inside the
# sub-network (a step of 1e-2 crosses them), and a float32-sized tolerance:
# the largest error seen was 1.3e-3 (JAX) and 2.8e-3 (PyTorch) on gradients
# of order 1, where a wrong gradient is off by O(0.1). On TensorFlow the
# check is float64 throughout; our own kernels are checked in float64 on
# every backend by the tests of the pooling and of `activations`.
WEIGHT_CHECK = {
    "tensorflow": {"eps": 1e-6, "atol": 1e-6},
    "jax": {"eps": 3e-3, "atol": 5e-3},
    "torch": {"eps": 3e-3, "atol": 5e-3},
}


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "shape, axis", [((3, 4, 5, 2), -1), ((3, 2, 4), 1), ((4, 3), -1)]
)
def test_numerical_gradients(shape, axis, training):
    # With respect to the inputs (the pooling, the output stage and the path
    # through the sub-network) and to every weight of the sub-network.
    keras.config.set_floatx("float64")
    layer = APReLU(axis=axis, dtype="float64")
    x = np.random.default_rng(5).normal(size=shape)
    layer.build(shape)
    randomize(layer)
    upstream = np.random.default_rng(6).normal(size=shape)
    fn, args = layer_function(layer, x, training=training)
    check = WEIGHT_CHECK[backend()]
    analytic = vjp(fn, args, upstream)
    numerical = numerical_vjp(fn, args, upstream, eps=check["eps"])
    names = ["inputs"] + [w.path for w in layer.trainable_weights]
    for name, a, n in zip(names, analytic, numerical, strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-4, atol=check["atol"], err_msg=name)


@pytest.mark.parametrize("axes", [[1, 2], [1], []])
def test_signed_means_gradients_in_float64(axes):
    # The pooling on its own, in float64 on every backend.
    from keras_aprelu import _ops

    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 3, 4, 2))
    x[0, 0, 0, 0] = 0.0  # the kink: the negative branch takes the gradient
    pooled_shape = [s for a, s in enumerate(x.shape) if a not in axes]
    ups = [rng.normal(size=shape) for shape in (x.shape, pooled_shape, pooled_shape)]

    def fn(x):
        passed, negative, positive = _ops.signed_means(x, axes)
        return keras.ops.concatenate(
            [keras.ops.reshape(t, [-1]) for t in (passed, negative, positive)], 0
        )

    upstream = np.concatenate([u.ravel() for u in ups])
    (analytic,) = vjp(fn, [x], upstream)
    count = int(np.prod([x.shape[a] for a in axes]))

    def expand(u):
        for a in axes:
            u = np.expand_dims(u, a)
        return u

    expected = ups[0] + np.where(x > 0, expand(ups[2]), expand(ups[1])) / count
    np.testing.assert_allclose(analytic, expected, rtol=1e-12, atol=1e-12)
    x[0, 0, 0, 0] = 0.5  # away from the kink, central differences agree
    (analytic,) = vjp(fn, [x], upstream)
    (numerical,) = numerical_vjp(fn, [x], upstream)
    np.testing.assert_allclose(analytic, numerical, rtol=1e-6, atol=1e-7)


def test_functional_form_gradients():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4))
    alpha = rng.uniform(0, 1, size=(2, 4))
    upstream = rng.normal(size=x.shape)
    analytic = vjp(activations.aprelu, [x, alpha], upstream)
    numerical = numerical_vjp(activations.aprelu, [x, alpha], upstream)
    for a, n in zip(analytic, numerical, strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-6)


def test_nan_and_inf_stay_in_their_sample():
    layer = APReLU()
    x = sample((3, 4, 4, 2))
    clean = to_numpy(layer(x[1:]))
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 1, 1] = np.inf
    y = to_numpy(layer(x))
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
        (
            {"epsilon": 0},
            r"`epsilon` must be a positive number\. Received: epsilon=0",
        ),
        ({"epsilon": "1e-5"}, r"Received: epsilon='1e-5'"),
        (
            {"normalization": "group"},
            r"`normalization` must be one of 'layer', 'none', 'batch', "
            r"'batch_renorm'\. Received: normalization='group'",
        ),
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
