import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aprelu
from keras_aprelu import viz
from keras_aprelu.viz._cam import upsample
from tests.backend_testing import tensorflow_only
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(1)


def identity_cam_model(channels=2, classes=2, pool=False):
    """conv (1x1, identity) -> [maxpool] -> GAP -> Dense, all known."""
    inp = keras.Input((16, 16, channels))
    conv = keras.layers.Conv2D(channels, 1, use_bias=False, name="conv")
    x = conv(inp)
    if pool:
        x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(classes, name="dense")
    model = keras.Model(inp, dense(x))
    conv.set_weights([np.eye(channels, dtype="float32")[None, None]])
    return model, dense


def two_objects():
    """Channel 0 holds an object top-left, channel 1 one bottom-right."""
    x = np.zeros((1, 16, 16, 2), "float32")
    x[0, 2:6, 2:6, 0] = 1.0
    x[0, 10:14, 9:15, 1] = 1.0
    return x


def test_grad_cam_lights_up_the_region_of_the_class():
    model, dense = identity_cam_model()
    dense.set_weights([np.eye(2, dtype="float32"), np.zeros(2, "float32")])
    x = two_objects()
    for cls, channel in ((0, 0), (1, 1)):
        cam = viz.grad_cam(model, x, cls, layer="conv")
        np.testing.assert_array_equal(cam[0], x[0, ..., channel])


def test_grad_cam_equals_the_hand_formula():
    # score = sum_c w_c mean(A_c) + b, so dscore/dA_c = w_c / HW everywhere.
    model, dense = identity_cam_model(channels=3, classes=2)
    w = RNG.normal(size=(3, 2)).astype("float32")
    dense.set_weights([w, np.zeros(2, "float32")])
    x = RNG.normal(size=(4, 16, 16, 3)).astype("float32")
    cam = viz.grad_cam(model, x, 1, layer="conv", normalize=False)
    expected = np.maximum((x * (w[:, 1] / 256)).sum(-1), 0)
    np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-7)


def test_grad_cam_plus_plus_equals_the_hand_formula():
    model, dense = identity_cam_model(channels=3, classes=2)
    w = RNG.normal(size=(3, 2)).astype("float32")
    dense.set_weights([w, np.zeros(2, "float32")])
    x = RNG.random(size=(2, 16, 16, 3)).astype("float32")
    cam = viz.grad_cam_plus_plus(model, x, 0, layer="conv", normalize=False)
    g = w[:, 0] / 256  # (C,), the same at every position
    total = x.sum(axis=(1, 2))  # (batch, C)
    a = g**2 / (2 * g**2 + total * g**3)
    weights = 256 * a * np.maximum(g, 0)
    expected = np.maximum((x * weights[:, None, None]).sum(-1), 0)
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-7)


def flatten_head_model(channels=3, classes=2, size=6):
    """conv (1x1, identity) -> Flatten -> Dense: the gradient differs at
    every position, dscore/dA_ijk = W[(i, j, k), c]."""
    inp = keras.Input((size, size, channels))
    conv = keras.layers.Conv2D(channels, 1, use_bias=False, name="conv")
    dense = keras.layers.Dense(classes, use_bias=False, name="dense")
    model = keras.Model(inp, dense(keras.layers.Flatten()(conv(inp))))
    conv.set_weights([np.eye(channels, dtype="float32")[None, None]])
    dense.set_weights(
        [RNG.normal(size=(size * size * channels, classes)).astype("float32")]
    )
    return model, dense


def test_hires_cam_equals_grad_cam_where_the_gradient_is_constant():
    model, dense = identity_cam_model(channels=3, classes=2)
    dense.set_weights(
        [RNG.normal(size=(3, 2)).astype("float32"), np.zeros(2, "float32")]
    )
    x = RNG.normal(size=(3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        viz.hires_cam(model, x, 1, layer="conv", normalize=False),
        viz.grad_cam(model, x, 1, layer="conv", normalize=False),
        rtol=1e-5,
        atol=1e-7,
    )


def test_hires_cam_and_layer_cam_equal_the_hand_formulas():
    model, dense = flatten_head_model()
    w = to_numpy(dense.kernel)[:, 1].reshape(6, 6, 3)
    x = RNG.normal(size=(2, 6, 6, 3)).astype("float32")
    hires = viz.hires_cam(model, x, 1, layer="conv", normalize=False)
    np.testing.assert_allclose(
        hires, np.maximum((x * w).sum(-1), 0), rtol=1e-5, atol=1e-6
    )
    layer = viz.layer_cam(model, x, 1, layer="conv", normalize=False)
    np.testing.assert_allclose(
        layer, np.maximum((x * np.maximum(w, 0)).sum(-1), 0), rtol=1e-5, atol=1e-6
    )
    # Grad-CAM pools the gradient over positions, and differs here.
    grad = viz.grad_cam(model, x, 1, layer="conv", normalize=False)
    assert np.abs(grad - hires).max() > 0.1


@tensorflow_only("counts traces with tf.function's tracing count")
def test_gradient_cams_share_one_traced_function_across_ranks():
    from keras_aprelu.viz import _backend

    # The features and gradients are traced once; each rule weighs them.
    model, dense = flatten_head_model()
    w = to_numpy(dense.kernel)[:, 0].reshape(6, 6, 3)
    x = RNG.normal(size=(2, 6, 6, 3)).astype("float32")
    first = viz.hires_cam(model, x, 0, layer="conv", normalize=False)
    layer = viz.layer_cam(model, x, 0, layer="conv", normalize=False)
    grad = viz.grad_cam(model, x, 0, layer="conv", normalize=False)
    viz.grad_cam_plus_plus(model, x, 0, layer="conv")
    functions = _backend.functions_of(model)
    (traced,) = [fn for key, fn in functions.items() if key[0] == "cam"]
    assert traced.experimental_get_tracing_count() == 1
    rules = sorted(key[1] for key in functions if key[0] == "cam rule")
    assert rules == sorted(
        f"{name}_rule"
        for name in ("grad_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam")
    )
    np.testing.assert_allclose(
        first, np.maximum((x * w).sum(-1), 0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        layer, np.maximum((x * np.maximum(w, 0)).sum(-1), 0), rtol=1e-5, atol=1e-6
    )
    expected = np.maximum((x * w.mean((0, 1))).sum(-1), 0)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)
    # A rule weighed 2-D maps above; it must still read the rank of 1-D ones.
    inp = keras.Input((10, 2))
    conv = keras.layers.Conv1D(2, 1, use_bias=False, name="conv")
    head = keras.layers.Dense(1, name="dense")
    signals = keras.Model(inp, head(keras.layers.Flatten()(conv(inp))))
    conv.set_weights([np.eye(2, dtype="float32")[None]])
    v = RNG.normal(size=(10, 2)).astype("float32")
    head.set_weights([v.reshape(20, 1), np.zeros(1, "float32")])
    s = RNG.normal(size=(3, 10, 2)).astype("float32")
    cam = viz.grad_cam(signals, s, 0, layer="conv", normalize=False)
    np.testing.assert_allclose(
        cam, np.maximum((s * v.mean(0)).sum(-1), 0), rtol=1e-5, atol=1e-6
    )


def test_hires_cam_counts_negative_features_with_negative_gradients():
    # On signed features (APReLU's), a negative activation with a negative
    # gradient raises the score: HiResCAM credits it, Layer-CAM cannot.
    model, dense = flatten_head_model(channels=1)
    dense.set_weights([-np.ones((36, 2), "float32")])
    x = -np.ones((1, 6, 6, 1), "float32")
    np.testing.assert_allclose(
        viz.hires_cam(model, x, 0, layer="conv", normalize=False), 1.0
    )
    np.testing.assert_allclose(
        viz.layer_cam(model, x, 0, layer="conv", normalize=False), 0.0
    )


def naive_score_cam(model, x, targets, layer, weights):
    """One forward pass per sample and channel, upsampled by tf.image.resize."""
    features = to_numpy(keras.Model(model.input, model.get_layer(layer).output)(x))
    size = x.shape[1:3]
    cams = []
    with models.logits(model):
        for i, target in enumerate(targets):
            scores = []
            for k in range(features.shape[-1]):
                a = tf.image.resize(features[i, ..., k : k + 1][None], size)[0, ..., 0]
                a = np.asarray(a)
                span = a.max() - a.min()
                mask = (a - a.min()) / span if span > 0 else np.zeros_like(a)
                logits = to_numpy(model(x[i : i + 1] * mask[None, ..., None]))[0]
                probabilities = np.exp(logits - logits.max())
                probabilities /= probabilities.sum()
                scores.append(
                    logits[target] if weights == "softmax" else probabilities[target]
                )
            w = to_numpy(scores)
            if weights == "softmax":
                w = np.exp(w - w.max()) / np.exp(w - w.max()).sum()
            cam = np.maximum((features[i] * w).sum(-1), 0)
            cams.append(
                np.asarray(tf.image.resize(cam[None, ..., None], size))[0, ..., 0]
            )
    return np.stack(cams)


@pytest.mark.parametrize("weights", ["softmax", "probability"])
def test_score_cam_equals_a_naive_loop(weights):
    model = models.randomize(models.functional(), seed=7)
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    targets = [0, 2, 1]
    got = viz.score_cam(
        model,
        x,
        targets,
        layer="prelu",
        weights=weights,
        normalize=False,
        batch_size=4,  # 6 channels x 3 samples in passes of 4
    )
    expected = naive_score_cam(model, x, targets, "prelu", weights)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert got.max() > 0


def test_score_cam_refuses_what_it_cannot_weigh():
    model = models.functional()
    x = np.zeros((1, 8, 8, 2), "float32")
    with pytest.raises(ValueError, match="`weights` must be one of"):
        viz.score_cam(model, x, weights="mean")
    with pytest.raises(ValueError, match='`weights="probability"` takes'):
        viz.score_cam(model, x, lambda o: o[:, 0], weights="probability")


def test_maps_are_upsampled_to_the_input_size():
    model, dense = identity_cam_model(pool=True)
    dense.set_weights([np.eye(2, dtype="float32"), np.zeros(2, "float32")])
    x = two_objects()
    cam = viz.grad_cam(model, x, 0, layer="pool", normalize=False)
    pooled = x[0, ..., 0].reshape(8, 2, 8, 2).max(axis=(1, 3)) / 64
    expected = tf.image.resize(pooled[None, ..., None], (16, 16))[0, ..., 0]
    np.testing.assert_allclose(cam[0], expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("size", [(5, 7), (13, 4), (3, 3)])
def test_upsample_matches_tf_image_resize(size):
    maps = RNG.normal(size=(2, 4, 6)).astype("float32")
    got = upsample(maps, size)
    expected = tf.image.resize(maps[..., None], size)[..., 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_guided_grad_cam_is_guided_saliency_times_cam():
    model = models.randomize(models.functional(), seed=5)
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    cam = viz.grad_cam(model, x, 2, normalize=False)
    guided = viz.saliency(model, x, 2, modifier="guided", normalize=False)
    got = viz.guided_grad_cam(model, x, 2, normalize=False)
    np.testing.assert_allclose(got, guided * cam, rtol=1e-5, atol=1e-8)


def test_default_layer_is_the_last_spatial_one_and_is_logged(capsys, caplog):
    model = models.randomize(models.functional())
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    with caplog.at_level(logging.INFO, logger="keras_aprelu.viz"):
        cam = viz.grad_cam(model, x)
    assert "'prelu' (PReLU)" in caplog.text
    explicit = viz.grad_cam(model, x, layer="prelu")
    np.testing.assert_array_equal(cam, explicit)
    assert not capsys.readouterr().out  # a library does not print


def test_default_layer_skips_what_only_passes_the_map_on():
    inp = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inp)
    x = keras.layers.ReLU(name="act")(x)
    x = keras.layers.SpatialDropout2D(0.5, name="drop")(x)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(x))
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    np.testing.assert_array_equal(
        viz.grad_cam(model, x, 1), viz.grad_cam(model, x, 1, layer="act")
    )
    # The 1 x 1 map of the pooling with keepdims is no feature map either.
    flat = viz.grad_cam(model, x, 1, layer="gap").reshape(2, -1)
    np.testing.assert_array_equal(flat.min(axis=1), flat.max(axis=1))


def test_default_map_made_by_an_op_is_read_at_the_pooling_input(caplog):
    # z = relu(conv_a(x)) + conv_b(x) is made by an op, as ConvNeXt's
    # residual sum: no layer outputs it, and Grad-CAM must still weigh z,
    # not a branch. dscore/dz_k = w_k / HW, so the map is relu(z @ w / HW).
    inp = keras.Input((6, 6, 2))
    a = keras.layers.ReLU(name="act")(keras.layers.Conv2D(3, 3, padding="same")(inp))
    b = keras.layers.Conv2D(3, 1, name="skip")(inp)
    z = a + b
    dense = keras.layers.Dense(2, name="head")
    model = keras.Model(inp, dense(keras.layers.GlobalAveragePooling2D(name="gap")(z)))
    models.randomize(model, seed=3)
    x = RNG.random((2, 6, 6, 2)).astype("float32")
    with caplog.at_level(logging.INFO, logger="keras_aprelu.viz"):
        cam = viz.grad_cam(model, x, 1, normalize=False)
    assert "the input of layer 'gap'" in caplog.text
    features = to_numpy(keras.Model(inp, z)(x))
    w = to_numpy(dense.kernel)[:, 1]
    expected = np.maximum(features @ w / 36, 0)
    np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-6)
    assert expected.max() > 0


def test_layer_by_path_object_and_name_inside_a_nested_model():
    model = models.randomize(models.nested())
    x = RNG.random((2, 8, 8, 2)).astype("float32")

    # A class whose CAM is positive somewhere in both inputs (with random
    # weights, a class's weighted sum can be negative everywhere).
    def positive(t):
        raw = viz.grad_cam(model, x, t, layer="conv2", normalize=False)
        return bool((raw.max(axis=(1, 2)) > 0).all())

    target = next(t for t in range(3) if positive(t))
    by_path = viz.grad_cam(model, x, target, layer="backbone/conv2")
    by_name = viz.grad_cam(model, x, target, layer="conv2")
    layer = model.get_layer("backbone").get_layer("conv2")
    by_object = viz.grad_cam(model, x, target, layer=layer)
    np.testing.assert_array_equal(by_path, by_name)
    np.testing.assert_array_equal(by_path, by_object)
    assert by_path.shape == (2, 8, 8) and by_path.max() == 1.0


def test_conv1d_signals():
    inp = keras.Input((32, 1))
    x = keras.layers.Conv1D(4, 5, padding="same", name="conv")(inp)
    x = keras_aprelu.APReLU(name="aprelu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    signal = RNG.normal(size=(2, 32, 1)).astype("float32")
    for method in (viz.grad_cam, viz.grad_cam_plus_plus, viz.guided_grad_cam):
        assert method(model, signal).shape == (2, 32)
    assert viz.saliency(model, signal).shape == (2, 32)
    assert viz.occlusion(model, signal, patch_size=4).shape == (2, 32)


def test_unknown_layer_lists_close_names():
    model = models.functional()
    with pytest.raises(
        ValueError,
        match=r"Close names: conv2, conv1.*"
        r"Received: layer='conv3'",
    ):
        viz.grad_cam(model, np.zeros((1, 8, 8, 2)), layer="conv3")


def test_model_without_spatial_layer():
    inp = keras.Input((6,))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Dense(4)(inp)))
    with pytest.raises(
        ValueError, match="`model` has no layer whose output is a feature map"
    ):
        viz.grad_cam(model, np.zeros((1, 6)))
    with pytest.raises(ValueError, match="`layer` must have one feature map as output"):
        viz.grad_cam(model, np.zeros((1, 6)), layer=model.layers[1])


def test_layer_of_another_model():
    model = models.functional()
    other = keras.layers.Conv2D(2, 3)
    with pytest.raises(ValueError, match="`layer` holds a layer that is not part of"):
        viz.grad_cam(model, np.zeros((1, 8, 8, 2)), layer=other)
