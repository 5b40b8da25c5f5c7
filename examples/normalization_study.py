"""Which normalization APReLU's sub-network should have: trains one cell
at a time, resumably, and records its accuracy in inference mode and in
training mode.

    python examples/normalization_study.py                  # every missing cell
    python examples/normalization_study.py --task burst --cells 3
    KERAS_BACKEND=torch python examples/normalization_study.py --task burst

A cell is (task, activation, normalization, seed, backend). Tasks:

- `burst`: the 1-D burst-in-noise task of `burst_task.py` (2,000 signals
  of 1,024 samples, batch 32, Adam at 1e-3, 20 epochs: 1,260 steps).
- `burst2d`: the same in 2-D (`burst_task.make_images`: 2,000 images of
  32 x 32 pixels, Conv2D, the same schedule).
- `mnist_cnn`: notebook 01's CNN and schedule (60,000 images, batch 128,
  Adam at 1e-3, 2 epochs: 938 steps).
- `mnist_resnet_1db`: notebook 03's ResNet at 1 dB (10,000 noisy images,
  batch 128, Adam at 1e-3, 3 epochs: 237 steps).

Each finished cell appends one record to --results (a JSON list, written
atomically): the cell, `steps`, `inference_accuracy` (`evaluate` on the
test set), `training_accuracy` (the same test set with every batch norm
using the statistics of its batch of the training batch size, as `fit`
computes it), `recalibrated_accuracy` (inference mode after
`keras_aprelu.recalibrate_batch_norm` over the training set) and
`seconds` (of `fit`). For the paper's sub-network it also records the
diagnosis of docs/layers.md: per batch norm of the sub-network, the median
over units of |moving mean - mean| / std, the mean and std being those of
its input over the test set with the final weights.
"""

import argparse
import json
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("KERAS_BACKEND", "jax")

if os.environ["KERAS_BACKEND"] == "tensorflow":
    import quiet_start

    quiet_start.import_tensorflow()

import awgn  # noqa: E402
import burst_task  # noqa: E402
import keras  # noqa: E402
import mnist_cnn  # noqa: E402
import mnist_data  # noqa: E402
import numpy as np  # noqa: E402
import records  # noqa: E402

import keras_aprelu  # noqa: E402

RESULTS = records.STUDY
TASKS = ("burst", "burst2d", "mnist_cnn", "mnist_resnet_1db")
# (activation, normalization): ReLU as the floor, APReLU with each.
VARIANTS = (
    ("relu", None),
    ("aprelu", "batch"),
    ("aprelu", "layer"),
    ("aprelu", "none"),
    ("aprelu", "batch_renorm"),
)


def task_data(task, seed):
    if task == "burst":
        train = burst_task.make_data(2000, amplitude=3.0, burst=64, seed=seed)
        test = burst_task.make_data(1000, amplitude=3.0, burst=64, seed=seed + 1000)
        return train, test, {"batch_size": 32, "epochs": 20}
    if task == "burst2d":
        train = burst_task.make_images(2000, seed=seed)
        test = burst_task.make_images(1000, seed=seed + 1000)
        return train, test, {"batch_size": 32, "epochs": 20}
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data(verbose=False)
    x_train, x_test = mnist_cnn.prepare(x_train), mnist_cnn.prepare(x_test)
    if task == "mnist_cnn":
        return (x_train, y_train), (x_test, y_test), {"batch_size": 128, "epochs": 2}
    # Notebook 03: the first 10,000 images of each split, one noise draw each.
    x_train, y_train, x_test, y_test = (
        x_train[:10_000],
        y_train[:10_000],
        x_test[:10_000],
        y_test[:10_000],
    )
    x_train = awgn.add_white_noise(x_train, 1, seed=np.random.SeedSequence([seed, 0]))
    x_test = awgn.add_white_noise(x_test, 1, seed=np.random.SeedSequence([seed, 1]))
    return (x_train, y_train), (x_test, y_test), {"batch_size": 128, "epochs": 3}


def build(task, activation, normalization, seed):
    if task in ("burst", "burst2d"):
        kwargs = {} if normalization is None else {"normalization": normalization}
        if task == "burst2d":
            kwargs.update(length=32, dims=2)
        return burst_task.build_model(activation, seed=seed, **kwargs)
    if normalization is not None:
        activation = f"{activation}_{normalization}"
    builder = mnist_cnn.build_cnn if task == "mnist_cnn" else mnist_cnn.build_resnet
    return mnist_cnn.compile_cnn(builder(activation, seed=seed))


def value(w):
    """A weight or tensor as a float64 NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(w), "float64")


def _first_norm_input(layer, h):
    """What the first normalization of APReLU `layer`'s sub-network sees
    for the layer's input `h`: Dense_1 of the pooled negative and positive
    means, in float64."""
    h = value(h)
    axes = tuple(a for a in range(1, h.ndim) if a != layer.axis % h.ndim)
    z = np.concatenate(
        [np.minimum(h, 0).mean(axis=axes), np.maximum(h, 0).mean(axis=axes)], -1
    )
    return z @ value(layer.dense_1.kernel) + value(layer.dense_1.bias)


def diagnosis(model, x):
    """Per sub-network batch norm: median over units of the distance from
    its moving mean to the mean of its input over `x`, in standard
    deviations of that input, and the median ratio of the moving standard
    deviation to that standard deviation."""
    found = {}
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras_aprelu.APReLU) and layer.normalization == "batch"
    ]
    if not layers:
        return found
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    features = probe.predict(x, batch_size=500, verbose=0)
    if len(layers) == 1:
        features = [features]
    for layer, h in zip(layers, features, strict=True):
        h1 = _first_norm_input(layer, h)
        bn1, bn2 = layer.normalization_layers()
        mean, std = h1.mean(0), h1.std(0)
        a1 = (h1 - mean) / np.sqrt(std**2 + bn1.epsilon) * value(bn1.gamma)
        a1 = np.maximum(a1 + value(bn1.beta), 0)
        h2 = a1 @ value(layer.dense_2.kernel) + value(layer.dense_2.bias)
        for bn, values in ((bn1, h1), (bn2, h2)):
            mean, std = values.mean(0), values.std(0)
            found[f"{layer.name}/{bn.name}"] = {
                "mean_error_in_std": float(
                    np.median(np.abs(value(bn.moving_mean) - mean) / std)
                ),
                "moving_std_over_std": float(
                    np.median(np.sqrt(value(bn.moving_variance)) / std)
                ),
            }
    return found


def train(task, activation, normalization, seed):
    (x_train, y_train), (x_test, y_test), schedule = task_data(task, seed)
    model = build(task, activation, normalization, seed)
    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=schedule["batch_size"],
        epochs=schedule["epochs"],
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    steps = schedule["epochs"] * -(-len(x_train) // schedule["batch_size"])
    inference = model.evaluate(x_test, y_test, batch_size=500, verbose=0)[1]
    training = burst_task.accuracy_in_training_mode(
        model, x_test, y_test, schedule["batch_size"]
    )
    found = diagnosis(model, x_test)
    keras_aprelu.recalibrate_batch_norm(model, x_train, batch_size=500)
    recalibrated = model.evaluate(x_test, y_test, batch_size=500, verbose=0)[1]
    return {
        "task": task,
        "activation": activation,
        "normalization": normalization,
        "seed": seed,
        "backend": keras.config.backend(),
        "steps": int(steps),
        "inference_accuracy": float(inference),
        "training_accuracy": float(training),
        "recalibrated_accuracy": float(recalibrated),
        "seconds": round(seconds, 1),
        "diagnosis": found,
    }


def key(record):
    return tuple(
        record[k] for k in ("task", "activation", "normalization", "seed", "backend")
    )


class Drift(keras.callbacks.Callback):
    """During `fit`, for the first batch norm of each APReLU sub-network
    (`normalization="batch"`), on a fixed probe batch: how far the mean of
    its input moves in one step, and how far its moving mean lies from
    that mean, both in standard deviations of the input over the probe,
    the median over units. `history` holds one row per step."""

    def __init__(self, probe):
        super().__init__()
        self.probe = probe
        self.history = []
        self._last = None

    def on_train_begin(self, logs=None):
        self._layers = [
            layer
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, keras_aprelu.APReLU)
        ]
        self._inputs = keras.Model(
            self.model.inputs, [layer.input for layer in self._layers]
        )

    def _bn_inputs(self):
        layers = self._layers
        features = self._inputs(self.probe, training=False)
        features = features if isinstance(features, list) else [features]
        found = []
        for layer, h in zip(layers, features, strict=True):
            moving = value(layer.normalization_layers()[0].moving_mean)
            found.append((_first_norm_input(layer, h), moving))
        return found

    def on_train_batch_end(self, batch, logs=None):
        now = self._bn_inputs()
        row = []
        for i, (h, moving) in enumerate(now):
            mean, std = h.mean(0), h.std(0)
            step = (
                np.nan
                if self._last is None
                else float(np.median(np.abs(mean - self._last[i]) / std))
            )
            lag = float(np.median(np.abs(moving - mean) / std))
            row.append({"step_move": step, "lag": lag})
        self._last = [h.mean(0) for h, _ in now]
        self.history.append(row)


def drift(seed=0, batch_size=32, learning_rate=1e-3, epochs=20):
    """Trains the paper's sub-network on the burst task with a `Drift`
    log; returns the medians over each quarter of training."""
    (x_train, y_train), _, _ = task_data("burst", seed)
    model = burst_task.build_model("aprelu", seed=seed, normalization="batch")
    model.optimizer.learning_rate.assign(learning_rate)
    log = Drift(x_train[:256])
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[log],
    )
    steps = len(log.history)
    quarters = []
    for q in range(4):
        rows = log.history[q * steps // 4 : (q + 1) * steps // 4]
        quarters.append(
            {
                f"act{i + 1}": {
                    key: float(np.nanmedian([r[i][key] for r in rows]))
                    for key in ("step_move", "lag")
                }
                for i in range(len(rows[0]))
            }
        )
    return {
        "seed": seed,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "backend": keras.config.backend(),
        "quarters": quarters,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--task", choices=TASKS, action="append")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cells", type=int, help="run at most this many cells")
    parser.add_argument(
        "--table", action="store_true", help="print the records as a table and stop"
    )
    parser.add_argument(
        "--drift",
        action="store_true",
        help="log, step by step, how far the paper's batch norms lag on the "
        "burst task, at batch 32 and 128, Adam at 1e-3 and 3e-3, print one "
        "JSON line each (examples/results/batch_norm_drift.json holds a run "
        "on TensorFlow) and stop",
    )
    parser.add_argument(
        "--normalization",
        action="append",
        help="only these variants: normalizations, or 'relu' for ReLU",
    )
    args = parser.parse_args(argv)
    if args.table:
        print(records.study_table(records.load(args.results)))
        return
    if args.drift:
        for batch_size, rate in ((32, 1e-3), (128, 1e-3), (32, 3e-3)):
            print(json.dumps(drift(batch_size=batch_size, learning_rate=rate)))
        return
    backend = keras.config.backend()
    variants = [
        v
        for v in VARIANTS
        if not args.normalization or (v[1] or v[0]) in args.normalization
    ]
    todo = [
        (task, activation, normalization, seed)
        for task in args.task or TASKS
        for seed in range(args.seeds)
        for activation, normalization in variants
    ]
    done = {key(r) for r in records.load(args.results)}
    todo = [cell for cell in todo if (*cell, backend) not in done]
    if args.cells is not None:
        todo = todo[: args.cells]
    print(f"{len(todo)} cell(s) to run on {backend}", flush=True)
    for cell in todo:
        record = train(*cell)
        records.save(args.results, records.load(args.results) + [record])
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
