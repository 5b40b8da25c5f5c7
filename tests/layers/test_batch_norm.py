"""`recalibrate_batch_norm` and its callback, against statistics computed
by hand in NumPy."""

import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu import APReLU
from tests.backend_testing import to_numpy


def tiny_model(seed=0):
    """Conv1D, BatchNormalization, the paper's APReLU, pooling, Dense."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((6, 2)),
            keras.layers.Conv1D(3, 2, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            APReLU(normalization="batch", name="act"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, name="head"),
        ]
    )


def data(count=10, seed=1):
    rng = np.random.default_rng(seed)
    # An offset large against the spread, as APReLU's pooled features have.
    return (5 + 0.1 * rng.normal(size=(count, 6, 2))).astype("float32")


def values(model):
    return [to_numpy(v).copy() for v in model.variables]


def batch_norm(h, bn, axes):
    """Keras's batch norm in batch mode, in float64."""
    mean, var = h.mean(axis=axes), h.var(axis=axes)
    gamma, beta = to_numpy(bn.gamma), to_numpy(bn.beta)
    return (h - mean) / np.sqrt(var + bn.epsilon) * gamma + beta


def expected_statistics(model, x, batch_size):
    """Each batch norm's input over all of `x`, the batch norms normalizing
    with their batch's statistics: {layer: (mean, variance)}."""
    conv, bn = model.get_layer("conv"), model.get_layer("bn")
    act = model.get_layer("act")
    inputs = {"bn": [], "bn1": [], "bn2": []}
    kernel, bias = to_numpy(conv.kernel), to_numpy(conv.bias)
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].astype("float64")
        # A valid Conv1D of width 2, by hand.
        h = np.einsum("btc,kcf->btf", xb[:, :-1], kernel[:1]) + np.einsum(
            "btc,kcf->btf", xb[:, 1:], kernel[1:]
        )
        h = h + bias
        inputs["bn"].append(h.reshape(-1, h.shape[-1]))
        a = batch_norm(h, bn, (0, 1))
        z = np.concatenate(
            [np.minimum(a, 0).mean(axis=1), np.maximum(a, 0).mean(axis=1)], axis=-1
        )
        h1 = z @ to_numpy(act.dense_1.kernel) + to_numpy(act.dense_1.bias)
        inputs["bn1"].append(h1)
        r = np.maximum(batch_norm(h1, act.batch_norm_1, 0), 0)
        inputs["bn2"].append(
            r @ to_numpy(act.dense_2.kernel) + to_numpy(act.dense_2.bias)
        )
    return {
        key: (np.concatenate(v).mean(0), np.concatenate(v).var(0))
        for key, v in inputs.items()
    }


@pytest.mark.parametrize("batch_size", [4, 10])
def test_statistics_are_exact_over_the_data(batch_size):
    model = tiny_model()
    x = data()
    before = {v.path: to_numpy(v).copy() for v in model.trainable_variables}
    layers = keras_aprelu.recalibrate_batch_norm(model, x, batch_size=batch_size)
    act = model.get_layer("act")
    assert {bn.name for bn in layers} == {"bn", "batch_norm_1", "batch_norm_2"}
    expected = expected_statistics(model, x, batch_size)
    for key, layer in [
        ("bn", model.get_layer("bn")),
        ("bn1", act.batch_norm_1),
        ("bn2", act.batch_norm_2),
    ]:
        mean, var = expected[key]
        np.testing.assert_allclose(
            to_numpy(layer.moving_mean), mean, rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(
            to_numpy(layer.moving_variance), var, rtol=2e-3, atol=1e-7
        )
    # Only the statistics change.
    for v in model.trainable_variables:
        np.testing.assert_array_equal(to_numpy(v), before[v.path])


def test_a_stream_gives_the_statistics_of_its_batches():
    x = data(12)
    arrays, stream = tiny_model(), tiny_model()
    keras_aprelu.recalibrate_batch_norm(arrays, x[:8], batch_size=4)
    # (x, y) pairs, as `fit` takes them; `steps` stops an endless stream.

    def batches():
        while True:
            for start in range(0, 12, 4):
                yield x[start : start + 4], np.zeros(4)

    keras_aprelu.recalibrate_batch_norm(stream, batches(), steps=2)
    for a, b in zip(
        arrays.non_trainable_variables, stream.non_trainable_variables, strict=True
    ):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6)
    # A tuple (x, y) of arrays counts as x.
    pairs = tiny_model()
    keras_aprelu.recalibrate_batch_norm(pairs, (x[:8], np.zeros(8)), batch_size=4)
    for a, b in zip(
        arrays.non_trainable_variables, pairs.non_trainable_variables, strict=True
    ):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_a_model_without_batch_norm_is_untouched():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 2)),
            keras.layers.Conv1D(3, 2),
            APReLU(),
            keras.layers.Flatten(),
        ]
    )
    before = values(model)
    assert keras_aprelu.recalibrate_batch_norm(model, data()) == []
    for a, b in zip(before, values(model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_frozen_batch_norms_keep_their_statistics():
    model = tiny_model()
    model.get_layer("bn").trainable = False
    before = values(model.get_layer("bn"))
    layers = keras_aprelu.recalibrate_batch_norm(model, data())
    assert "bn" not in {bn.name for bn in layers}
    for a, b in zip(before, values(model.get_layer("bn")), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_call_that_fails_leaves_the_model_as_it_was():
    model = tiny_model()
    before = values(model)

    def batches():
        yield data(4)
        yield np.zeros((4, 6, 3), "float32")  # the wrong number of channels

    with pytest.raises(ValueError):
        keras_aprelu.recalibrate_batch_norm(model, batches())
    for a, b in zip(before, values(model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert "call" not in model.get_layer("bn").__dict__


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"steps": 0},
            ValueError,
            r"`steps` must be a positive int\. Received: steps=0",
        ),
        (
            {"batch_size": 2.5},
            ValueError,
            r"`batch_size` must be a positive int\. Received: batch_size=2\.5",
        ),
        ({"data": 3}, TypeError, r"`data` must be an array .* Received: data=int"),
        ({"data": iter([])}, ValueError, r"`data` holds no batch\. Received: data="),
        ({"model": "model"}, TypeError, r"`model` must be a Keras model\. Received"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    arguments = {"model": tiny_model(), "data": data(), **kwargs}
    before = values(arguments["model"]) if "model" not in kwargs else None
    with pytest.raises(error, match=match):
        keras_aprelu.recalibrate_batch_norm(**arguments)
    if before is not None:
        for a, b in zip(before, values(arguments["model"]), strict=True):
            np.testing.assert_array_equal(a, b)
