import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu import viz
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(2)


def naive_occlusion(model, x, target, patch, stride, baseline):
    """One forward pass per patch, on the logits, counting overlaps."""
    with models.logits(model):
        clean = to_numpy(model(x))
        out = np.zeros(x.shape[:3])
        count = np.zeros(x.shape[1:3])
        height, width = x.shape[1:3]
        rows = list(range(0, height - patch[0] + 1, stride[0]))
        cols = list(range(0, width - patch[1] + 1, stride[1]))
        if rows[-1] + patch[0] < height:
            rows.append(height - patch[0])
        if cols[-1] + patch[1] < width:
            cols.append(width - patch[1])
        for i in rows:
            for j in cols:
                occluded = x.copy()
                occluded[:, i : i + patch[0], j : j + patch[1]] = baseline
                scores = to_numpy(model(occluded))
                drop = (
                    clean[np.arange(len(x)), target] - scores[np.arange(len(x)), target]
                )
                out[:, i : i + patch[0], j : j + patch[1]] += drop[:, None, None]
                count[i : i + patch[0], j : j + patch[1]] += 1
    return out / np.maximum(count, 1)  # uncovered pixels stay 0


@pytest.mark.parametrize(
    "patch, stride", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 2), (1, 3))]
)
def test_occlusion_equals_a_naive_loop(patch, stride):
    model = models.randomize(models.functional(), seed=7)
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    target = np.array([0, 2, 1])
    got = viz.occlusion(
        model,
        x,
        target,
        patch_size=patch,
        stride=stride,
        baseline=0.5,
        normalize=False,
        batch_size=5,
    )
    expected = naive_occlusion(model, x, target, patch, stride, 0.5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_many_positions_are_split_across_passes():
    model = models.randomize(models.functional(), seed=8)
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    small = viz.occlusion(
        model, x, 1, patch_size=2, stride=1, batch_size=7, normalize=False
    )
    large = viz.occlusion(
        model, x, 1, patch_size=2, stride=1, batch_size=512, normalize=False
    )
    np.testing.assert_allclose(small, large, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        small,
        naive_occlusion(model, x, [1, 1], (2, 2), (1, 1), 0.0),
        rtol=1e-4,
        atol=1e-5,
    )


def test_several_chunks_of_inputs_with_predicted_targets_match_a_naive_loop():
    # 5 inputs in chunks of 2 and passes of 2 pairs: the pairs of an input
    # straddle passes, and each chunk picks its own predicted classes.
    model = models.randomize(models.functional(), seed=9)
    x = RNG.random((5, 8, 8, 2)).astype("float32")
    predicted = np.argmax(to_numpy(model(x)), axis=1)
    got = viz.occlusion(model, x, patch_size=3, stride=2, batch_size=2, normalize=False)
    expected = naive_occlusion(model, x, predicted, (3, 3), (2, 2), 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_occlusion_of_a_linear_model_is_the_patch_contribution():
    # Linear score: hiding pixel p with baseline 0 lowers it by w_p x_p, so
    # with 1-element patches the map is w * x.
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    w = model.layers[0].get_weights()[0]
    x = RNG.normal(size=(3, 6)).astype("float32")
    got = viz.occlusion(model, x, 1, patch_size=1, normalize=False)
    np.testing.assert_allclose(got, x * w[:, 1], rtol=1e-5, atol=1e-6)


def test_baseline_per_input():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    w = model.layers[0].get_weights()[0][:, 0]
    x = RNG.normal(size=(2, 4)).astype("float32")
    base = RNG.normal(size=(2, 4)).astype("float32")
    got = viz.occlusion(model, x, 0, patch_size=1, baseline=base, normalize=False)
    np.testing.assert_allclose(got, (x - base) * w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"patch_size": 9}, r"`patch_size` must fit.*\(8, 8\)"),
        ({"patch_size": 0}, "`patch_size` must be a positive int"),
        ({"patch_size": (2, 2, 2)}, "`patch_size` must be a positive int"),
        ({"stride": -1}, "`stride` must be a positive int"),
        ({"baseline": np.zeros(3)}, "`baseline` must be a number"),
    ],
)
def test_bad_arguments(kwargs, message):
    model = models.functional()
    with pytest.raises(ValueError, match=message):
        viz.occlusion(model, np.zeros((1, 8, 8, 2)), **kwargs)


def test_occlusion_of_a_conv1d_signal_equals_a_naive_loop():
    # The APReLU paper's own inputs are 1-D signals.
    model = keras.Sequential(
        [
            keras.Input((13, 2)),
            keras.layers.Conv1D(4, 3, padding="same"),
            keras_aprelu.APReLU(),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3),
        ]
    )
    models.randomize(model, seed=4)
    x = RNG.normal(size=(2, 13, 2)).astype("float32")
    got = viz.occlusion(model, x, [2, 0], patch_size=4, stride=3, normalize=False)
    clean = to_numpy(model(x))[[0, 1], [2, 0]]
    out, count = np.zeros((2, 13)), np.zeros(13)
    for start in [0, 3, 6, 9]:  # 9 + 4 = 13 reaches the end
        hidden = x.copy()
        hidden[:, start : start + 4] = 0.0
        out[:, start : start + 4] += (clean - to_numpy(model(hidden))[[0, 1], [2, 0]])[
            :, None
        ]
        count[start : start + 4] += 1
    np.testing.assert_allclose(got, out / count, rtol=1e-4, atol=1e-5)
