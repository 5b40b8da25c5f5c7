"""Notebook 05's tools: the slopes' start, batch mode, re-estimated
statistics and the records' summary, against hand-computed values."""

import aprelu_ablation
import keras
import numpy as np
import pytest
import records

import keras_aprelu


def tiny(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras_aprelu.APReLU(normalization="batch", name="act"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def sample(n=8, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 4, 4, 3)).astype("float32")


def test_with_gamma_zero_every_slope_is_alpha():
    model = tiny()
    aprelu_ablation.set_initial_slopes(model, alpha=0.1, gamma=0.0)
    alpha = keras.ops.convert_to_numpy(model.get_layer("act").slopes(sample()))
    np.testing.assert_allclose(alpha, 0.1, rtol=1e-5)


def test_small_gamma_keeps_slopes_near_alpha():
    model = tiny()
    aprelu_ablation.set_initial_slopes(model, alpha=0.1, gamma=0.1)
    layer = model.get_layer("act")
    # By hand: alpha = sigmoid(gamma * (h - 0) / sqrt(1 + eps) + logit(0.1)),
    # with h = Dense_2(relu(BN_1(Dense_1(z)))) at fresh statistics.
    x = sample()
    z = np.concatenate(
        [np.minimum(x, 0).mean((1, 2)), np.maximum(x, 0).mean((1, 2))], 1
    )
    w1, b1 = (keras.ops.convert_to_numpy(v) for v in layer.dense_1.weights)
    w2, b2 = (keras.ops.convert_to_numpy(v) for v in layer.dense_2.weights)
    eps = layer.batch_norm_1.epsilon
    h = np.maximum((z @ w1 + b1) / np.sqrt(1 + eps), 0) @ w2 + b2
    expected = 1 / (1 + np.exp(-(0.1 * h / np.sqrt(1 + eps) + np.log(0.1 / 0.9))))
    got = keras.ops.convert_to_numpy(layer.slopes(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_set_initial_slopes_refuses_a_slope_outside_0_1():
    with pytest.raises(ValueError, match=r"Received: alpha=1.5"):
        aprelu_ablation.set_initial_slopes(tiny(), alpha=1.5)


def test_batch_mode_normalizes_with_the_batch_and_restores_every_weight():
    model = tiny()
    x = sample()
    before = [keras.ops.convert_to_numpy(v) for v in model.weights]
    layer = model.get_layer("act")
    with aprelu_ablation.sub_network_in_batch_mode(model):
        got = keras.ops.convert_to_numpy(model(x, training=False))
    # The same network with the layer in training mode and the rest not.
    h = layer(x, training=True)
    expected = keras.ops.convert_to_numpy(
        model.layers[2](model.layers[1](h, training=False), training=False)
    )
    for variable, value in zip(model.weights, before, strict=True):
        variable.assign(value)
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(got - inference).max() > 1e-4  # batch mode changed the output
    model2 = tiny()
    with aprelu_ablation.sub_network_in_batch_mode(model2):
        model2(x, training=False)
    after = [keras.ops.convert_to_numpy(v) for v in model2.weights]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "call" not in vars(model2.get_layer("act"))


def test_reestimated_statistics_are_the_average_over_the_batches():
    model = tiny()
    layer = model.get_layer("act")
    x = sample(n=12, seed=3)
    aprelu_ablation.reestimate_statistics(model, x, batch_size=4)
    z = np.concatenate(
        [np.minimum(x, 0).mean((1, 2)), np.maximum(x, 0).mean((1, 2))], 1
    )
    w1, b1 = (keras.ops.convert_to_numpy(v) for v in layer.dense_1.weights)
    h = (z @ w1 + b1).reshape(3, 4, -1)  # three batches of four
    bn = layer.batch_norm_1
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(bn.moving_mean),
        h.mean(1).mean(0),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(bn.moving_variance),
        h.var(1).mean(0),
        rtol=1e-4,
        atol=1e-5,
    )
    assert bn.momentum == 0.9 and "call" not in vars(layer)


def test_slope_log_records_the_start_and_every_n_steps():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            keras.layers.Conv2D(5, 3, padding="same"),
            keras_aprelu.APReLU(normalization="batch", name="act"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = sample(16), np.arange(16) % 2
    probe = x[:8]
    log = aprelu_ablation.SlopeLog(probe, every=2)
    # Before training, with batch statistics, each channel's logit is
    # standardized over the batch: alpha = sigmoid(mean 0, variance ~1).
    act = model.get_layer("act")
    start = keras.ops.convert_to_numpy(
        act.slopes(model.layers[0](probe), training=True)
    )
    logit = np.log(start / (1 - start))
    np.testing.assert_allclose(logit.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(logit.var(0), 1, rtol=0.02)
    for variable in (
        act.batch_norm_1.non_trainable_variables
        + act.batch_norm_2.non_trainable_variables
    ):
        variable.assign(
            np.zeros(variable.shape)
            if "mean" in variable.path
            else np.ones(variable.shape)
        )
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[log])
    assert [entry["step"] for entry in log.history] == [0, 2, 4]
    assert log.history[0]["act"]["batch"]["std"] == pytest.approx(
        float(start.std()), rel=1e-5
    )
    # The slopes of the APReLU's own input: the convolution's output.
    features = model.layers[0](probe)
    alpha = keras.ops.convert_to_numpy(model.get_layer("act").slopes(features))
    assert alpha.shape == (8, 5)
    last = log.history[-1]["act"]["inference"]
    assert last["mean"] == pytest.approx(float(alpha.mean()), rel=1e-5)
    assert last["across_samples"] == pytest.approx(float(alpha.std(0).mean()), rel=1e-5)
    # As training computes them: the batch's statistics, and nothing kept.
    layer = model.get_layer("act")
    saved = [keras.ops.convert_to_numpy(v) for v in layer.non_trainable_variables]
    batch = keras.ops.convert_to_numpy(layer.slopes(features, training=True))
    assert log.history[-1]["act"]["batch"]["std"] == pytest.approx(
        float(batch.std()), rel=1e-5
    )
    for variable, value in zip(layer.non_trainable_variables, saved, strict=True):
        variable.assign(value)


def test_summary_groups_seeds_and_orders_levels():
    def record(activation, snr_db, seed, test):
        return {
            "activation": activation,
            "snr_db": snr_db,
            "seed": seed,
            "steps": 5500,
            "epochs": 10,
            "train_accuracy": 1.0,
            "test_accuracy": test,
            "seconds": 1.0,
            "backend": "jax",
        }

    # A record without "normalization" was written before APReLU had a
    # choice: its APReLU had the paper's batch norms.
    rows = records.summary(
        [
            record("aprelu", None, 0, 0.99),
            record("relu", 1, 1, 0.97),
            {**record("aprelu", 1, 0, 0.80), "normalization": "none"},
            record("relu", 1, 0, 0.95),
            record("aprelu", 1, 0, 0.90),
        ]
    )
    assert [(r["level"], r["activation"]) for r in rows] == [
        ("1 dB", "ReLU"),
        ("1 dB", "APReLU (batch norm)"),
        ("1 dB", "APReLU (no norm)"),
        ("clean", "APReLU (batch norm)"),
    ]
    assert rows[0]["seeds"] == [0, 1]
    assert rows[0]["mean"] == pytest.approx(96.0)
    assert rows[0]["std"] == pytest.approx(np.std([95, 97], ddof=1))
    assert rows[1]["std"] is None
    assert rows[2]["mean"] == pytest.approx(80.0)


def test_study_table_gives_mean_and_std_over_seeds_per_cell():
    def record(normalization, seed, inference, training):
        return {
            "task": "burst",
            "activation": "relu" if normalization is None else "aprelu",
            "normalization": normalization,
            "seed": seed,
            "backend": "jax",
            "steps": 1260,
            "inference_accuracy": inference,
            "training_accuracy": training,
            "recalibrated_accuracy": inference,
        }

    table = records.study_table(
        [
            record("none", 0, 0.98, 0.98),
            record("batch", 0, 0.90, 0.94),
            record("none", 1, 0.96, 0.96),
            record(None, 0, 0.95, 0.95),
        ]
    )
    rows = table.splitlines()[2:]
    # ReLU first, then the paper's batch norms, then the default.
    assert [row.split(" | ")[2] for row in rows] == [
        "ReLU (1)",
        "`batch` (1)",
        "`none` (2)",
    ]
    spread = 100 * np.std([0.98, 0.96], ddof=1)
    assert rows[2] == (
        f"| burst (1,260) | jax | `none` (2) | 97.0 ± {spread:.1f} "
        f"| 97.0 ± {spread:.1f} | 97.0 ± {spread:.1f} |"
    )
    assert rows[1].endswith("| 90.0 | 94.0 | 90.0 |")
