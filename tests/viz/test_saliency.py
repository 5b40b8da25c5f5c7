import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu import viz
from keras_aprelu.viz import _inputs
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(0)


def linear_model(inputs=5, classes=3, activation=None):
    model = keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(classes, activation=activation)]
    )
    w = RNG.normal(size=(inputs, classes)).astype("float32")
    model.layers[0].set_weights([w, RNG.normal(size=classes).astype("float32")])
    return model, w


@pytest.mark.parametrize("activation", [None, "softmax"])
def test_saliency_of_a_linear_model_is_abs_weight_column(activation):
    model, w = linear_model(activation=activation)
    x = RNG.normal(size=(4, 5)).astype("float32")
    maps = viz.saliency(model, x, [0, 2, 1, 2], normalize=False)
    np.testing.assert_allclose(maps, np.abs(w[:, [0, 2, 1, 2]].T), rtol=1e-6)


def test_logits_false_takes_the_softmax_gradient():
    model, w = linear_model(activation="softmax")
    x = RNG.normal(size=(2, 5)).astype("float32")
    p = to_numpy(model(x))
    maps = viz.saliency(model, x, 1, logits=False, normalize=False)
    # d softmax_1 / dx = p1 * (w_1 - sum_k p_k w_k)
    expected = np.abs(p[:, 1:2] * (w[:, 1] - p @ w.T))
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


def test_predicted_class_is_the_default_target():
    model, w = linear_model()
    x = RNG.normal(size=(6, 5)).astype("float32")
    predicted = np.argmax(to_numpy(model(x)), axis=1)
    maps = viz.saliency(model, x, normalize=False)
    np.testing.assert_allclose(maps, np.abs(w[:, predicted].T), rtol=1e-6)


def test_callable_target():
    model, w = linear_model()
    x = RNG.normal(size=(3, 5)).astype("float32")
    maps = viz.saliency(model, x, lambda out: out[:, 0] - out[:, 1], normalize=False)
    np.testing.assert_allclose(
        maps, np.abs(w[:, 0] - w[:, 1])[None].repeat(3, 0), rtol=1e-6
    )


def test_normalize_divides_each_map_by_its_maximum():
    model, w = linear_model()
    x = RNG.normal(size=(3, 5)).astype("float32")
    maps = viz.saliency(model, x, 0)
    raw = np.abs(w[:, 0])
    np.testing.assert_allclose(maps[0], raw / raw.max(), rtol=1e-5, atol=1e-6)


# Guided backprop and deconvnet on x -> Dense(W1) -> activation -> Dense(W2),
# rank-2, no biases. With h = x W1 and dy = W2[:, t] at the activation:
#   guided:    dx = W1 @ (f'(h) * relu(dy))
#   deconvnet: dx = W1 @ relu(dy)       (Maxout: routed to the winners)
def two_layer(activation_layer, hidden=4, inputs=3, classes=2):
    inp = keras.Input((inputs,))
    h = keras.layers.Dense(hidden, use_bias=False, name="d1")(inp)
    a = activation_layer(h)
    out = keras.layers.Dense(classes, use_bias=False, name="d2")(a)
    model = keras.Model(inp, out)
    w1 = RNG.normal(size=(inputs, hidden)).astype("float32")
    model.get_layer("d1").set_weights([w1])
    units = model.get_layer("d2").kernel.shape[0]
    w2 = RNG.normal(size=(units, classes)).astype("float32")
    model.get_layer("d2").set_weights([w2])
    return model, w1, w2


def slope_rule(alpha):
    return lambda h: np.where(h > 0, 1.0, alpha)


def relu_rule(h):
    return (h > 0).astype("float32")


@pytest.mark.parametrize(
    "make, derivative",
    [
        (lambda: keras.layers.ReLU(), lambda layer: relu_rule),
        (lambda: keras.layers.Activation("relu"), lambda layer: relu_rule),
        (lambda: keras.layers.LeakyReLU(0.2), lambda layer: slope_rule(0.2)),
        (
            lambda: keras_aprelu.PReLU(alpha_initializer=0.3),
            lambda layer: slope_rule(0.3),
        ),
        (
            lambda: keras.layers.PReLU(
                alpha_initializer=keras.initializers.Constant(0.4)
            ),
            lambda layer: slope_rule(0.4),
        ),
        (
            lambda: keras_aprelu.RReLU(0.1, 0.3),
            lambda layer: slope_rule(0.2),
        ),
    ],
    ids=["ReLU", "Activation", "LeakyReLU", "PReLU", "keras.PReLU", "RReLU"],
)
@pytest.mark.parametrize("modifier", ["guided", "deconvnet"])
def test_rules_match_hand_derivation(make, derivative, modifier):
    layer = make()
    model, w1, w2 = two_layer(layer)
    x = RNG.normal(size=(5, 3)).astype("float32")
    h = x @ w1
    upstream = np.maximum(w2[:, 1], 0)
    if modifier == "guided":
        dx = (derivative(layer)(h) * upstream) @ w1.T
    else:
        dx = np.broadcast_to(upstream @ w1.T, x.shape)
    maps = viz.saliency(model, x, 1, modifier=modifier, normalize=False)
    np.testing.assert_allclose(maps, np.abs(dx), rtol=1e-5, atol=1e-6)


def test_relu_inside_dense_follows_the_rule():
    inp = keras.Input((3,))
    h = keras.layers.Dense(4, use_bias=False, activation="relu", name="d1")(inp)
    out = keras.layers.Dense(2, use_bias=False, name="d2")(h)
    model = keras.Model(inp, out)
    w1 = model.get_layer("d1").get_weights()[0]
    w2 = model.get_layer("d2").get_weights()[0]
    x = RNG.normal(size=(5, 3)).astype("float32")
    guided = ((x @ w1 > 0) * np.maximum(w2[:, 0], 0)) @ w1.T
    maps = viz.saliency(model, x, 0, modifier="guided", normalize=False)
    np.testing.assert_allclose(maps, np.abs(guided), rtol=1e-5, atol=1e-6)
    vanilla = ((x @ w1 > 0) * w2[:, 0]) @ w1.T
    np.testing.assert_allclose(
        viz.saliency(model, x, 0, normalize=False),
        np.abs(vanilla),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("modifier", ["guided", "deconvnet"])
def test_aprelu_rule_holds_its_slopes_constant(modifier):
    layer = keras_aprelu.APReLU(name="aprelu")
    model, w1, w2 = two_layer(layer)
    x = RNG.normal(size=(6, 3)).astype("float32")
    h = x @ w1
    alpha = to_numpy(layer.slopes(h))
    upstream = np.maximum(w2[:, 0], 0)
    if modifier == "guided":
        dx = (np.where(h > 0, 1.0, alpha) * upstream) @ w1.T
    else:
        dx = np.broadcast_to(upstream @ w1.T, x.shape)
    maps = viz.saliency(model, x, 0, modifier=modifier, normalize=False)
    np.testing.assert_allclose(maps, np.abs(dx), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grouping", ["contiguous", "strided"])
@pytest.mark.parametrize("modifier", ["guided", "deconvnet"])
def test_maxout_rule_routes_to_the_winner(modifier, grouping):
    layer = keras_aprelu.Maxout(2, grouping=grouping)
    model, w1, w2 = two_layer(layer, hidden=6)
    x = RNG.normal(size=(5, 3)).astype("float32")
    h = x @ w1
    groups = (
        h.reshape(5, 2, 3)
        if grouping == "contiguous"
        else h.reshape(5, 3, 2).transpose(0, 2, 1)
    )
    channel = (
        np.arange(6).reshape(2, 3)
        if grouping == "contiguous"
        else (np.arange(6).reshape(3, 2).T)
    )
    winners = np.take_along_axis(
        np.broadcast_to(channel, groups.shape),
        groups.argmax(-1)[..., None],
        -1,
    )[..., 0]
    upstream = np.maximum(w2[:, 1], 0)  # the same for both rules
    dh = np.zeros_like(h)
    for b in range(5):
        dh[b, winners[b]] = upstream
    maps = viz.saliency(model, x, 1, modifier=modifier, normalize=False)
    np.testing.assert_allclose(maps, np.abs(dh @ w1.T), rtol=1e-5, atol=1e-6)


def test_activation_without_rule_warns_with_its_name():
    model, _, _ = two_layer(keras.layers.Activation("tanh", name="squash"))
    x = RNG.normal(size=(2, 3)).astype("float32")
    with pytest.warns(
        UserWarning, match=r"no rule for 1 activation .*1 x tanh \(squash\)"
    ):
        viz.saliency(model, x, modifier="guided")
    with pytest.warns(UserWarning, match=r"no rule .*squash"):
        viz.saliency(model, x, modifier="guided")  # warned on every call


def test_final_softmax_is_not_reported_as_unruled(recwarn):
    inp = keras.Input((3,))
    h = keras.layers.Dense(4, activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h))
    viz.saliency(model, RNG.normal(size=(2, 3)), modifier="guided")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_gradient_x_input_of_a_linear_model_is_x_times_w():
    model, w = linear_model()
    x = RNG.normal(size=(4, 5)).astype("float32")
    got = viz.gradient_x_input(model, x, 1, normalize=False)
    np.testing.assert_allclose(got, x * w[:, 1], rtol=1e-5, atol=1e-7)


def test_gradient_x_input_sums_over_channels():
    inp = keras.Input((4, 4, 3))
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    w = to_numpy(dense.kernel)[:, 0].reshape(4, 4, 3)
    x = RNG.normal(size=(2, 4, 4, 3)).astype("float32")
    got = viz.gradient_x_input(model, x, 0, normalize=False)
    np.testing.assert_allclose(got, (x * w).sum(-1), rtol=1e-5, atol=1e-6)


def test_smoothgrad_of_a_linear_model_is_the_vanilla_map():
    model, w = linear_model()
    x = RNG.normal(size=(3, 5)).astype("float32")
    maps = viz.saliency(
        model, x, 1, smooth_samples=8, smooth_noise=0.5, normalize=False, batch_size=4
    )
    np.testing.assert_allclose(maps, np.abs(w[:, 1].T)[None].repeat(3, 0), rtol=1e-5)


def test_smoothgrad_averages_noisy_maps():
    # f(x) = relu(x) . 1 : the gradient is 1 where x + noise > 0, so the
    # SmoothGrad map at x is P(x + sigma z > 0) = Phi(x / sigma).
    inp = keras.Input((4,))
    dense = keras.layers.Dense(1, use_bias=False, trainable=False)
    model = keras.Model(inp, dense(keras.layers.ReLU()(inp)))
    dense.set_weights([np.ones((4, 1), "float32")])
    x = np.array([[-1.0, -0.25, 0.25, 1.0]] * 2, "float32")  # range 2
    maps = viz.saliency(
        model,
        x,
        0,
        smooth_samples=4000,
        smooth_noise=0.25,
        normalize=False,
        batch_size=8000,
    )
    from math import erf
    from math import sqrt

    sigma = 0.25 * 2.0
    expected = [0.5 * (1 + erf(v / sigma / sqrt(2))) for v in x[0]]
    np.testing.assert_allclose(maps[0], expected, atol=0.03)
    again = viz.saliency(
        model,
        x,
        0,
        smooth_samples=4000,
        smooth_noise=0.25,
        normalize=False,
        batch_size=8000,
    )
    np.testing.assert_array_equal(maps, again)  # the same seed


def test_smoothgrad_uses_the_clean_prediction_for_every_copy():
    model, w = linear_model()
    x = RNG.normal(size=(4, 5)).astype("float32")
    predicted = np.argmax(to_numpy(model(x)), axis=1)
    maps = viz.saliency(model, x, smooth_samples=16, smooth_noise=3.0, normalize=False)
    np.testing.assert_allclose(maps, np.abs(w[:, predicted].T), rtol=1e-5)


def test_integrated_gradients_of_a_linear_model_are_exact():
    model, w = linear_model()
    x = RNG.normal(size=(3, 5)).astype("float32")
    base = RNG.normal(size=(5,)).astype("float32")
    maps, gap = viz.integrated_gradients(
        model, x, 2, baseline=base, steps=4, normalize=False, return_gap=True
    )
    np.testing.assert_allclose(maps, (x - base) * w[:, 2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gap, 0, atol=1e-5)


def test_integrated_gradients_satisfy_completeness():
    model = models.randomize(models.functional(), seed=3)
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    maps, gap = viz.integrated_gradients(
        model, x, 1, steps=128, normalize=False, return_gap=True
    )
    with keras_aprelu_logits(model):
        fx = to_numpy(model(x))[:, 1]
        f0 = to_numpy(model(np.zeros_like(x)))[:, 1]
    total = maps.reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(total - (fx - f0), gap, rtol=1e-3, atol=1e-4)
    assert np.all(np.abs(gap) < 0.02 * np.abs(fx - f0).max())
    _, coarse = viz.integrated_gradients(
        model, x, 1, steps=2, normalize=False, return_gap=True
    )
    assert np.abs(coarse).sum() > np.abs(gap).sum()


def keras_aprelu_logits(model):
    return models.logits(model)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"modifier": "guidedd"}, "`modifier` must be one of None"),
        ({"smooth_samples": -1}, "`smooth_samples` must be an int >= 0"),
        ({"smooth_noise": -0.1}, "`smooth_noise` must be a finite number >= 0"),
        ({"batch_size": 0}, "`batch_size` must be a positive int"),
        ({"target": 3}, r"`target` must lie in \[0, 2\]"),
        ({"target": [0, 1]}, "`target` must hold one class per input"),
        ({"target": "cat"}, "`target` must be None, an int"),
    ],
)
def test_bad_arguments(kwargs, message):
    model, _ = linear_model()
    with pytest.raises(ValueError, match=message):
        viz.saliency(model, np.zeros((3, 5)), **kwargs)


def test_wrong_input_shape():
    model, _ = linear_model()
    with pytest.raises(
        ValueError,
        match=r"`inputs` must have shape \(batch, 5\).*"
        r"Received: inputs.shape=\(2, 4\)",
    ):
        viz.saliency(model, np.zeros((2, 4)))
    with pytest.raises(TypeError, match="`model` must be a Keras 3"):
        viz.saliency("model.keras", np.zeros((2, 5)))


def test_integrated_gradients_bad_baseline():
    model, _ = linear_model()
    with pytest.raises(ValueError, match="`baseline` must be a number"):
        viz.integrated_gradients(model, np.zeros((2, 5)), baseline=np.zeros(4))
    with pytest.raises(ValueError, match="`steps` must be a positive int"):
        viz.integrated_gradients(model, np.zeros((2, 5)), steps=0)


def test_integrated_gradients_on_a_conv1d_signal_satisfy_completeness():
    model = keras.Sequential(
        [
            keras.Input((16, 2)),
            keras.layers.Conv1D(4, 3, padding="same"),
            keras_aprelu.APReLU(),
            keras.layers.Conv1D(4, 3),
            keras_aprelu.Maxout(2),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3),
        ]
    )
    models.randomize(model, seed=6)
    x = RNG.normal(size=(3, 16, 2)).astype("float32")
    maps, gap = viz.integrated_gradients(
        model, x, 0, steps=256, normalize=False, return_gap=True
    )
    assert maps.shape == (3, 16)
    fx, f0 = to_numpy(model(x))[:, 0], to_numpy(model(np.zeros_like(x)))[:, 0]
    np.testing.assert_allclose(maps.sum(axis=1) - (fx - f0), gap, rtol=1e-3, atol=1e-4)
    assert np.all(np.abs(gap) < 0.02 * np.abs(fx - f0).max())


def test_normalize_keeps_zero_at_zero_for_signed_maps():
    maps = np.array([[[-2.0, 0.0], [1.0, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_allclose(
        _inputs.normalize_maps(maps),
        [[[1.0, 0.0], [0.5, 0.25]], [[0.0, 0.0], [0.0, 0.0]]],
    )
    # Integrated gradients of a linear model from a zero baseline: zero
    # where the input is zero, whatever the sign of the weights.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    w = np.array([[1.0, 0], [-3.0, 0], [2.0, 0], [5.0, 0]], "float32")
    model.layers[0].set_weights([w, np.zeros(2, "float32")])
    x = np.array([[1.0, 1.0, 0.5, 0.0]], "float32")
    got = viz.integrated_gradients(model, x, 0, steps=4)
    np.testing.assert_allclose(got, [[1 / 3, 1.0, 1 / 3, 0.0]], rtol=1e-5)


def test_smoothgrad_is_the_noise_tunnel_of_saliency():
    # One noise for both: sample j of input i from default_rng([seed, j, i]).
    model = models.randomize(models.functional(), seed=4)
    x = RNG.random((5, 8, 8, 2)).astype("float32")
    ours = viz.saliency(
        model, x, 1, smooth_samples=3, smooth_noise=0.3, seed=7, batch_size=4
    )
    tunnel = viz.noise_tunnel(
        viz.saliency, model, x, 1, samples=3, noise=0.3, seed=7, batch_size=2
    )
    np.testing.assert_allclose(ours, tunnel, rtol=1e-5, atol=1e-6)
    other_seed = viz.saliency(model, x, 1, smooth_samples=3, smooth_noise=0.3, seed=8)
    assert np.abs(other_seed - ours).max() > 1e-3
