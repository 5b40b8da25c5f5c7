"""Deletion and insertion, against curves computed by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aprelu import viz
from keras_aprelu.viz import metrics
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(41)


def linear_image_model(size=4, channels=2, softmax=False):
    """score = sum(w * x) over a (size, size, channels) image, for class 0."""
    inp = keras.Input((size, size, channels))
    dense = keras.layers.Dense(
        2, use_bias=False, activation="softmax" if softmax else None
    )
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    w = RNG.normal(size=(size * size * channels, 2)).astype("float32")
    dense.set_weights([w])
    return model, w[:, 0].reshape(size, size, channels)


def hand_curve(x, w, order, steps, insert, baseline=0.0):
    """The class-0 score of x with the top round(k P / steps) positions of
    `order` removed (deletion) or alone restored (insertion)."""
    size = x.shape[0] * x.shape[1]
    curve = []
    for k in range(steps + 1):
        top = np.zeros(size, bool)
        top[order[: int(round(k * size / steps))]] = True
        take_baseline = ~top if insert else top
        mask = take_baseline.reshape(x.shape[:2])[..., None]
        curve.append(float(((np.where(mask, baseline, x)) * w).sum()))
    return np.array(curve)


def trapezoid(curve, steps):
    return (curve[:-1] + curve[1:]).sum() / (2 * steps)


@pytest.mark.parametrize("insert", [False, True])
def test_curves_and_areas_equal_the_hand_computation(insert):
    model, w = linear_image_model()
    x = RNG.normal(size=(3, 4, 4, 2)).astype("float32")
    maps = RNG.random((3, 4, 4)).astype("float32")
    function = metrics.insertion if insert else metrics.deletion
    for steps in (16, 5, 3):  # 5 and 3 do not divide the 16 positions
        areas, curves = function(
            model, x, maps, 0, steps=steps, baseline=0.5, return_curves=True
        )
        assert areas.shape == (3,) and curves.shape == (3, steps + 1)
        for i in range(3):
            order = np.argsort(-maps[i].ravel(), kind="stable")
            expected = hand_curve(x[i], w, order, steps, insert, baseline=0.5)
            np.testing.assert_allclose(curves[i], expected, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(
                areas[i], trapezoid(expected, steps), rtol=1e-4, atol=1e-5
            )


def test_ties_go_in_position_order():
    model, w = linear_image_model()
    x = RNG.normal(size=(1, 4, 4, 2)).astype("float32")
    _, curves = metrics.deletion(
        model, x, np.ones((1, 4, 4)), 0, steps=16, return_curves=True
    )
    expected = hand_curve(x[0], w, np.arange(16), 16, insert=False)
    np.testing.assert_allclose(curves[0], expected, rtol=1e-4, atol=1e-5)


def test_a_faithful_map_deletes_faster_and_inserts_faster():
    # On a linear model with a positive input, the map w * x orders the
    # positions by their true contribution; its reverse is the worst order.
    model, w = linear_image_model(channels=1)
    x = RNG.random((4, 4, 4, 1)).astype("float32")
    good = (x * w).sum(-1)
    assert (
        metrics.deletion(model, x, good, 0) < metrics.deletion(model, x, -good, 0)
    ).all()
    assert (
        metrics.insertion(model, x, good, 0) > metrics.insertion(model, x, -good, 0)
    ).all()


def test_a_softmax_model_is_scored_by_its_probability_of_the_predicted_class():
    model, _ = linear_image_model(softmax=True)
    x = RNG.normal(size=(3, 4, 4, 2)).astype("float32")
    maps = RNG.random((3, 4, 4))
    _, curves = metrics.deletion(model, x, maps, steps=4, return_curves=True)
    probabilities = to_numpy(model(x))
    np.testing.assert_allclose(curves[:, 0], probabilities.max(axis=1), rtol=1e-5)
    _, inserted = metrics.insertion(model, x, maps, steps=4, return_curves=True)
    np.testing.assert_allclose(inserted[:, -1], probabilities.max(axis=1), rtol=1e-5)


def test_batching_streams_and_real_maps_agree():
    model = models.randomize(models.functional(), seed=5)
    x = RNG.random((5, 8, 8, 2)).astype("float32")
    maps = viz.saliency(model, x)
    together = metrics.deletion(model, x, maps, batch_size=64)
    chunked = metrics.deletion(model, x, maps, batch_size=7)
    np.testing.assert_allclose(chunked, together, rtol=1e-5, atol=1e-7)
    stream = tf.data.Dataset.from_tensor_slices(x).batch(2)
    np.testing.assert_allclose(
        metrics.insertion(model, stream, maps),
        metrics.insertion(model, x, maps),
        rtol=1e-5,
        atol=1e-7,
    )


@pytest.mark.parametrize(
    "maps, kwargs, message",
    [
        (np.zeros((2, 4, 3)), {}, r"`maps` must hold one map per input.*\(2, 4, 3\)"),
        (np.zeros((3, 4, 4)), {}, r"`maps` must hold one map per input \(2\)"),
        (np.full((2, 4, 4), np.nan), {}, "`maps` must be a finite numeric array"),
        ("saliency", {}, "`maps` must be a finite numeric array"),
        (np.zeros((2, 4, 4)), {"steps": 0}, "`steps` must be a positive int"),
    ],
)
def test_bad_arguments(maps, kwargs, message):
    model, _ = linear_image_model()
    with pytest.raises(ValueError, match=message):
        metrics.deletion(model, np.zeros((2, 4, 4, 2)), maps, **kwargs)


def recording_method(model, log):
    """gradient x input, recording its maps and which layers differ from
    the original model at each call."""
    original = {
        path: [np.array(w) for w in layer.get_weights()] for path, layer in _walk(model)
    }

    def method(model, x, target, **kwargs):
        changed = [
            path
            for path, layer in _walk(model)
            if any(
                not np.array_equal(a, b)
                for a, b in zip(layer.get_weights(), original[path], strict=True)
            )
        ]
        maps = viz.gradient_x_input(model, x, target, **kwargs)
        log.append((changed, maps, target))
        return maps

    return method


def _walk(model):
    from keras_aprelu.viz import _layers

    return [(p, lyr) for p, lyr in _layers.walk(model) if lyr.weights]


def test_randomization_test_is_cumulative_from_the_top_with_spearman_correlations():
    stats = pytest.importorskip("scipy.stats")
    model = models.randomize(models.functional(), seed=9)
    x = RNG.random((4, 8, 8, 2)).astype("float32")
    before = [np.array(w) for w in model.get_weights()]
    log = []
    result = metrics.randomization_test(model, x, recording_method(model, log))
    # dense, prelu, conv2, aprelu, conv1: from the output down, cumulatively.
    assert list(result) == ["dense", "prelu", "conv2", "aprelu", "conv1"]
    assert [changed for changed, _, _ in log] == [
        [],
        ["dense"],
        ["prelu", "dense"],
        ["conv2", "prelu", "dense"],
        ["aprelu", "conv2", "prelu", "dense"],
        ["conv1", "aprelu", "conv2", "prelu", "dense"],
    ]
    original = log[0][1]
    for correlations, (_, maps, target) in zip(result.values(), log[1:], strict=True):
        expected = [
            stats.spearmanr(original[i].ravel(), maps[i].ravel()).statistic
            for i in range(4)
        ]
        np.testing.assert_allclose(correlations, expected, rtol=1e-5, atol=1e-6)
        # Every step explains the class the original model predicted.
        np.testing.assert_array_equal(target, np.argmax(to_numpy(model(x)), 1))
    assert result["conv1"].mean() < 0.9  # the maps depend on the weights
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # restored bit for bit


def test_randomization_test_restores_the_model_after_an_error():
    model = models.randomize(models.functional(), seed=9)
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    before = [np.array(w) for w in model.get_weights()]
    calls = []

    def failing(model, x, target, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a method that fails at the second layer")
        return viz.saliency(model, x, target, **kwargs)

    with pytest.raises(RuntimeError, match="fails at the second layer"):
        metrics.randomization_test(model, x, failing)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    result = metrics.randomization_test(model, x, viz.saliency, layers=["conv2"])
    assert list(result) == ["conv2"] and result["conv2"].shape == (2,)


def test_spearman_with_ties_and_constant_maps():
    stats = pytest.importorskip("scipy.stats")
    a = np.array([[0.0, 0.0, 1.0, 2.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    b = np.array([[3.0, 0.0, 0.0, 2.0, 1.0, 1.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    got = metrics._spearman(a, b)
    np.testing.assert_allclose(got[0], stats.spearmanr(a[0], b[0]).statistic, rtol=1e-6)
    # A constant map has no ranking: NaN, never the 0 that reads as a pass.
    assert np.isnan(got[1])


def bn_model():
    """Conv2D -> BatchNormalization -> ReLU -> Conv2D -> ReLU -> GAP ->
    Dense, untrained: every BN scale is 1, with no spread."""
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(4, 3, padding="same", name="conv1"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.ReLU(),
            keras.layers.Conv2D(4, 3, padding="same", name="conv2"),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, name="dense"),
        ]
    )


def test_randomization_never_collapses_a_weight_to_zero():
    # Drawn from each weight's own spread, the BN scale of ones became 0,
    # every later map all zeros, and every later step scored 0.0.
    model = bn_model()
    x = RNG.random((4, 8, 8, 2)).astype("float32")
    seen = []

    def spying(model, x, target, **kwargs):
        seen.append(to_numpy(model.get_layer("bn").gamma).copy())
        return viz.saliency(model, x, target, **kwargs)

    result = metrics.randomization_test(model, x, spying)
    assert list(result) == ["dense", "conv2", "bn", "conv1"]
    # The BN scale is redrawn by its initializer (ones), not to zero.
    np.testing.assert_array_equal(seen[3], np.ones(4))
    for path, correlations in result.items():
        assert not np.any(correlations == 0.0), path
        assert np.all(np.isfinite(correlations)), path


def test_randomization_uses_the_layers_initializer_with_the_seed():
    model = bn_model()
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    kernels = []

    def spying(model, x, target, **kwargs):
        kernels.append(to_numpy(model.get_layer("dense").kernel).copy())
        return viz.saliency(model, x, target, **kwargs)

    metrics.randomization_test(model, x, spying, layers=["dense"], seed=3)
    metrics.randomization_test(model, x, spying, layers=["dense"], seed=3)
    # Glorot uniform, the Dense default: bounded by sqrt(6 / (4 + 3)).
    limit = np.sqrt(6 / 7)
    assert np.abs(kernels[1]).max() <= limit and np.abs(kernels[1]).std() > 0
    np.testing.assert_array_equal(kernels[1], kernels[3])  # the same seed


def test_flat_maps_score_nan_with_one_warning():
    model = models.randomize(models.functional(), seed=9)
    x = RNG.random((3, 8, 8, 2)).astype("float32")

    def flat_for_the_second(model, x, target, **kwargs):
        maps = viz.saliency(model, x, target, **kwargs)
        maps[1] = 0.0
        return maps

    with pytest.warns(UserWarning, match=r"2 of 6 correlations .* are NaN"):
        result = metrics.randomization_test(
            model, x, flat_for_the_second, layers=["dense", "conv2"]
        )
    for correlations in result.values():
        assert np.isnan(correlations[1])
        assert np.all(np.isfinite(correlations[[0, 2]]))


@pytest.mark.parametrize(
    "count, returned",
    [(4, (4, 5)), (4, (7, 8, 8)), (2, (3, 8, 8)), (2, (2, 8, 7))],
    ids=["2-D", "7 maps for 4", "3 maps for 2", "wrong width"],
)
def test_randomization_refuses_maps_of_the_wrong_shape(count, returned):
    model = models.randomize(models.functional(), seed=9)
    x = RNG.random((count, 8, 8, 2)).astype("float32")

    def wrong(model, x, target, **kwargs):
        return np.ones(returned, "float32")

    with pytest.raises(ValueError, match=r"`method` must return one map per input"):
        metrics.randomization_test(model, x, wrong)


def test_randomization_errors_name_layers():
    model = models.functional()
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    with pytest.raises(ValueError, match=r"`layers` names no layer .*layers='nope'"):
        metrics.randomization_test(model, x, viz.saliency, layers=["nope"])
    with pytest.raises(TypeError, match=r"`layers` must be a list.*layers='dense'"):
        metrics.randomization_test(model, x, viz.saliency, layers="dense")


def test_a_score_that_ignores_the_input_is_flagged_once():
    model = models.randomize(models.functional(), seed=9)
    dense = model.get_layer("dense")
    dense.kernel.assign(np.zeros(dense.kernel.shape))  # the output is the bias
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    maps = RNG.random((3, 8, 8))
    for metric in (metrics.deletion, metrics.insertion):
        with pytest.warns(UserWarning, match=r"For 3 of 3 inputs .* barely moves"):
            metric(model, x, maps)


def test_maps_of_the_wrong_type_are_named():
    model = models.functional()
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    with pytest.raises(ValueError, match=r"Received: maps=dict$"):
        metrics.deletion(model, x, {"a": np.zeros((2, 8, 8))})
