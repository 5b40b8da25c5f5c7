"""LRP and DeepLIFT: against zennit and Captum on a PyTorch rebuild of the
same weights, against hand computations, conservation, summation to delta,
and the errors."""

import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu import viz
from tests.backend_testing import backend
from tests.viz import models
from tests.viz import torch_rebuild

X = np.random.default_rng(1).uniform(-1, 1, (3, *torch_rebuild.SHAPE)).astype("float32")
TARGET = 2
COMPOSITES = viz._lrp.COMPOSITES

torch_only = pytest.mark.skipif(
    backend() != "torch", reason="zennit and Captum hook PyTorch modules"
)


def _close(ours, theirs, rtol=1e-4):
    assert np.abs(theirs).max() > 1e-3  # a map that could differ
    np.testing.assert_allclose(
        ours, theirs, rtol=rtol, atol=rtol * np.abs(theirs).max()
    )


def _zennit_composite(name, gate_class, epsilon=1e-6):
    zennit = torch_rebuild.import_zennit()
    import torch
    from zennit import composites
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.rules import Epsilon
    from zennit.rules import Pass

    extra = [(gate_class, Pass())]
    canonizers = [SequentialMergeBatchNorm()]
    if name == "epsilon":
        return composites.LayerMapComposite(
            layer_map=extra
            + composites.layer_map_base()
            + [
                (zennit.types.Convolution, Epsilon(epsilon)),
                (torch.nn.Linear, Epsilon(epsilon)),
            ],
            canonizers=canonizers,
        )
    cls = {
        "epsilon_plus": composites.EpsilonPlus,
        "epsilon_plus_flat": composites.EpsilonPlusFlat,
        "epsilon_gamma_box": composites.EpsilonGammaBox,
        "epsilon_alpha2_beta1": composites.EpsilonAlpha2Beta1,
        "epsilon_alpha2_beta1_flat": composites.EpsilonAlpha2Beta1Flat,
    }[name]
    kwargs = {"low": -1.0, "high": 1.0} if name == "epsilon_gamma_box" else {}
    return cls(epsilon=epsilon, layer_map=extra, canonizers=canonizers, **kwargs)


def _zennit_relevance(net, composite):
    import torch

    x = torch.tensor(np.transpose(X, (0, 3, 1, 2)), requires_grad=True)
    with composite.context(net) as modified:
        out = modified(x)
        start = torch.zeros_like(out)
        rows = torch.arange(len(X))
        start[rows, TARGET] = out[rows, TARGET].detach()
        (relevance,) = torch.autograd.grad(out, x, start)
    return relevance.detach().numpy().sum(axis=1)  # over channels, NCHW


@torch_only
@pytest.mark.parametrize("composite", COMPOSITES)
@pytest.mark.parametrize("activation", ["aprelu", "prelu", "relu"])
def test_lrp_equals_zennits_on_a_rebuild_of_the_same_weights(composite, activation):
    model = torch_rebuild.keras_cnn(activation)
    net, gate = torch_rebuild.torch_cnn(model, X)
    import torch

    with torch.no_grad():  # the rebuild computes what the model computes
        np.testing.assert_allclose(
            net(torch.tensor(np.transpose(X, (0, 3, 1, 2)))).numpy(),
            keras.ops.convert_to_numpy(model(X)),
            rtol=1e-4,
            atol=1e-5,
        )
    theirs = _zennit_relevance(net, _zennit_composite(composite, gate))
    kwargs = {"low": -1.0, "high": 1.0} if composite == "epsilon_gamma_box" else {}
    ours = viz.lrp(model, X, TARGET, composite=composite, normalize=False, **kwargs)
    _close(ours, theirs)


@torch_only
@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks:UserWarning")
@pytest.mark.parametrize(
    "activation, baseline", [("relu", 0.0), ("relu", 0.3), ("leaky", 0.3)]
)
def test_deeplift_equals_captums_on_a_rebuild(activation, baseline):
    import torch
    from captum.attr import DeepLift

    model = torch_rebuild.keras_cnn(activation)
    net, _ = torch_rebuild.torch_cnn(model, X, native=True)
    base = np.full_like(X, baseline)
    base[:, 4:6] = -baseline
    x = torch.tensor(np.transpose(X, (0, 3, 1, 2)), requires_grad=True)
    b = torch.tensor(np.transpose(base, (0, 3, 1, 2)))
    theirs, delta = DeepLift(net, eps=1e-10).attribute(
        x, baselines=b, target=TARGET, return_convergence_delta=True
    )
    assert np.abs(delta.detach().numpy()).max() < 1e-5
    ours = viz.deeplift(model, X, TARGET, baseline=base, normalize=False)
    _close(ours, theirs.detach().numpy().sum(axis=1))


# ---------------------------------------------------------------- every backend


def _bias_free_model():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras_aprelu.APReLU()(x)
    p = keras.layers.MaxPooling2D(2)(x)
    c = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(p)
    x = keras.layers.Add()([p, keras.layers.ReLU()(c)])
    x = keras.layers.SeparableConv2D(6, 3, use_bias=False, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8, use_bias=False)(x)
    x = keras_aprelu.PReLU()(x)
    x = keras_aprelu.Maxout(4)(x)
    outputs = keras.layers.Dense(3, use_bias=False, activation="softmax", name="head")(
        x
    )
    model = models.randomize(keras.Model(inputs, outputs), 4)
    # The sub-network of APReLU keeps its biases: its slopes are not
    # explained, and do not take or give relevance.
    return model


def test_epsilon_lrp_conserves_relevance_without_biases():
    model = _bias_free_model()
    x = np.random.default_rng(2).normal(size=(4, 8, 8, 2)).astype("float32")
    relevance = viz.lrp(model, x, composite="epsilon", epsilon=1e-9, normalize=False)
    with models.logits(model, "head"):
        logits = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(
        relevance.reshape(4, -1).sum(1), logits.max(1), rtol=1e-4, atol=1e-6
    )


def test_lrp_on_a_dense_layer_by_hand():
    """One Dense layer: relevance = x * w[:, t] * z_t / (z_t + eps sign z_t).
    (The linear Activation after it is the identity.)"""
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2), keras.layers.Activation("linear")]
    )
    kernel = np.array([[1, -2], [0.5, 1], [-1, 3], [2, 0]], "float32")
    bias = np.array([0.25, -0.5], "float32")
    model.layers[0].set_weights([kernel, bias])
    x = np.array([[1.0, 2.0, -1.0, 0.5]], "float32")
    z = x @ kernel + bias
    eps = 0.1
    want = x * kernel[:, 1] * z[0, 1] / (z[0, 1] + eps * np.sign(z[0, 1]))
    got = viz.lrp(model, x, 1, composite="epsilon", epsilon=eps, normalize=False)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_zplus_by_hand_on_negative_inputs():
    """zennit's z+ lets inputs be negative (a PReLU's): positive inputs
    through positive weights, negative through negative ones."""
    model = keras.Sequential(
        [keras.Input((2, 1)), keras.layers.Conv1D(1, 2, use_bias=True)]
    )
    model.layers[0].set_weights(
        [np.array([[[2.0]], [[-1.0]]], "float32"), np.array([0.5], "float32")]
    )
    x = np.array([[[1.5], [-2.0]]], "float32")
    # z+ = w+ x+ + b+ + w- x- = 2 * 1.5 + 0.5 + (-1) * (-2) = 5.5
    contributions = np.array([2.0 * 1.5, -1.0 * -2.0])
    z = 2 * 1.5 - 1 * -2 + 0.5
    want = contributions * z / (5.5 + 1e-6)
    got = viz.lrp(
        model, x, lambda out: out[:, 0, 0], composite="epsilon_plus", normalize=False
    )
    np.testing.assert_allclose(got[0], want, rtol=1e-6)


def _deeplift_model():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras_aprelu.APReLU()(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(6, 3, activation="elu")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Dense(8, activation="gelu")(x)
    x = keras_aprelu.Maxout(4)(x)
    x = keras_aprelu.RReLU()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return models.randomize(keras.Model(inputs, outputs), 6)


def test_deeplift_sums_to_the_change_of_the_logit():
    model = _deeplift_model()
    x = np.random.default_rng(3).normal(size=(4, 8, 8, 2)).astype("float32")
    base = np.random.default_rng(4).normal(size=(8, 8, 2)).astype("float32")
    maps, gap = viz.deeplift(
        model, x, 1, baseline=base, normalize=False, return_gap=True
    )
    with models.logits(model, "head"):
        change = keras.ops.convert_to_numpy(model(x) - model(base[None]))[:, 1]
    np.testing.assert_allclose(maps.reshape(4, -1).sum(1), change, rtol=1e-4, atol=1e-5)
    assert np.abs(gap).max() < 1e-4 * np.abs(change).max()
    # Not the gradient times the change: the rescale rule matters here.
    grad_x_change = viz.gradient_x_input(model, x - base, 1, normalize=False)
    assert np.abs(maps - grad_x_change).max() > 1e-3


def test_deeplift_shap_is_the_mean_over_its_baselines():
    model = _deeplift_model()
    x = np.random.default_rng(5).normal(size=(3, 8, 8, 2)).astype("float32")
    references = np.random.default_rng(6).normal(size=(4, 8, 8, 2)).astype("float32")
    got = viz.deeplift_shap(model, x, references, 2, normalize=False, batch_size=5)
    want = np.mean(
        [viz.deeplift(model, x, 2, baseline=r, normalize=False) for r in references],
        axis=0,
    )
    # Other batches, other float rounding (XLA fuses them differently).
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_a_final_softmax_is_bypassed():
    model = _bias_free_model()
    x = np.random.default_rng(7).normal(size=(2, 8, 8, 2)).astype("float32")
    head = model.layers[-1]
    with_softmax = viz.lrp(model, x, 0, normalize=False)
    head.activation = keras.activations.linear
    np.testing.assert_allclose(viz.lrp(model, x, 0, normalize=False), with_softmax)


class Squeeze(keras.layers.Layer):
    def call(self, x):
        return keras.ops.squeeze(x, axis=-1)


def _attention_model():
    inputs = keras.Input((4, 6))
    x = keras.layers.MultiHeadAttention(2, 3, name="attention")(inputs, inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


@pytest.mark.parametrize("method", ["lrp", "deeplift"])
def test_a_layer_without_a_rule_is_refused_by_name_before_any_work(method):
    model = _attention_model()
    x = np.random.default_rng(8).normal(size=(2, 4, 6)).astype("float32")
    before = models.snapshot(model)
    before["prediction"] = keras.ops.convert_to_numpy(model(x, training=False))
    with pytest.raises(ValueError, match="'attention', a MultiHeadAttention") as info:
        getattr(viz, method)(model, x)
    assert "register_relevance_rule" in str(info.value)
    assert "Received: model with layer 'attention'" in str(info.value)
    models.assert_unchanged(model, before, x)


def test_a_softmax_inside_the_model_is_refused():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, activation="softmax", name="inner")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="'inner', a Dense whose activation 'softmax'"):
        viz.lrp(model, np.ones((1, 6), "float32"))


def test_a_registered_layer_gets_its_rule():
    inputs = keras.Input((5, 1))
    x = Squeeze()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    x = np.random.default_rng(9).normal(size=(2, 5, 1)).astype("float32")
    with pytest.raises(ValueError, match="a Squeeze"):
        viz.lrp(model, x)
    viz.register_relevance_rule(Squeeze, "route")
    try:
        got = viz.lrp(model, x, 0, composite="epsilon", normalize=False)
    finally:
        del viz._relevance.KINDS[Squeeze]
    kernel, bias = model.layers[-1].get_weights()
    z = x[..., 0] @ kernel[:, 0] + bias[0]
    want = x[..., 0] * kernel[:, 0] * (z / (z + 1e-6 * np.sign(z)))[:, None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"composite": "z_plus"}, "Received: composite='z_plus'"),
        ({"epsilon": -1.0}, "Received: epsilon=-1.0"),
        ({"low": "dark"}, "Received: low='dark'"),
    ],
)
def test_lrp_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.lrp(_bias_free_model(), X[:1, :8, :8], **kwargs)


def test_register_relevance_rule_checks_its_arguments():
    with pytest.raises(TypeError, match="Received: layer_class=3"):
        viz.register_relevance_rule(3, "route")
    with pytest.raises(ValueError, match="Received: kind='linear'"):
        viz.register_relevance_rule(Squeeze, "linear")
    assert Squeeze not in viz._relevance.KINDS


def test_deeplift_shap_checks_its_baselines():
    model = _deeplift_model()
    x = np.zeros((1, 8, 8, 2), "float32")
    with pytest.raises(ValueError, match=r"Received: baselines.shape=\(8, 8, 2\)"):
        viz.deeplift_shap(model, x, np.zeros((8, 8, 2), "float32"))


def test_a_shared_baseline_gives_what_a_baseline_per_input_gives():
    # One baseline for every input runs as one row of the batch.
    model = _deeplift_model()
    x = np.random.default_rng(10).normal(size=(3, 8, 8, 2)).astype("float32")
    base = np.random.default_rng(11).normal(size=(8, 8, 2)).astype("float32")
    targets = [0, 2, 1]  # each input its own class, the baseline's too
    shared, gap = viz.deeplift(
        model, x, targets, baseline=base, normalize=False, return_gap=True
    )
    each, each_gap = viz.deeplift(
        model,
        x,
        targets,
        baseline=np.repeat(base[None], 3, axis=0),
        normalize=False,
        return_gap=True,
    )
    assert np.abs(shared).max() > 1e-3
    np.testing.assert_allclose(shared, each, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gap, each_gap, atol=1e-5)
    assert np.abs(gap).max() < 1e-4


def _fold(kernel, bias, bn, depthwise=False):
    gamma, beta, mean, variance = bn.get_weights()
    scale = gamma / np.sqrt(variance + bn.epsilon)
    shape = kernel.shape[-2:] if depthwise else kernel.shape[-1:]
    return kernel * scale.reshape(shape), (bias - mean) * scale + beta


@pytest.mark.parametrize("kind", ["dense", "conv", "depthwise", "separable"])
def test_a_batch_norm_after_a_linear_layer_is_merged_into_it(kind):
    """LRP of a model with linear layer + BatchNormalization equals LRP of
    the model whose linear layer holds the batch norm, folded by hand."""
    make = {
        "dense": lambda: keras.layers.Dense(6, name="linear"),
        "conv": lambda: keras.layers.Conv2D(4, 3, name="linear"),
        "depthwise": lambda: keras.layers.DepthwiseConv2D(
            3, depth_multiplier=2, name="linear"
        ),
        "separable": lambda: keras.layers.SeparableConv2D(4, 3, name="linear"),
    }[kind]
    shape = (5,) if kind == "dense" else (6, 6, 2)

    def build(with_bn, between=False):
        inputs = keras.Input(shape)
        x = make()(inputs)
        if between:  # the batch norm no longer directly follows it
            x = keras.layers.Identity()(x)
        if with_bn:
            x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Flatten()(x)
        return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))

    model = models.randomize(build(True), 12)
    folded = build(False)
    weights = model.get_layer("linear").get_weights()
    bn = model.get_layer("bn")
    *rest, kernel, bias = weights
    kernel, bias = _fold(kernel, bias, bn, depthwise=kind == "depthwise")
    folded.get_layer("linear").set_weights([*rest, kernel, bias])
    folded.get_layer("head").set_weights(model.get_layer("head").get_weights())
    x = np.random.default_rng(13).normal(size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(folded(x)),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-4,
        atol=1e-5,
    )
    for composite in ("epsilon", "epsilon_plus"):
        got = viz.lrp(model, x, 0, composite=composite, normalize=False)
        want = viz.lrp(folded, x, 0, composite=composite, normalize=False)
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    if kind == "dense":
        # Epsilon at a dense layer and then at an affine batch norm is
        # epsilon at the two merged: the same map either way.
        return
    # Not merged (a layer between), the batch norm takes the epsilon rule of
    # its own after z+, which gives another map: the comparison can fail.
    apart = build(True, between=True)
    apart.set_weights(model.get_weights())
    other = viz.lrp(apart, x, 0, composite="epsilon_plus", normalize=False)
    assert np.abs(other - want).max() > 1e-2 * np.abs(want).max()
