"""Reruns Zhao et al.'s MNIST experiment with their own network and recipe,
one (activation, noise level, seed) cell at a time, resumably.

    python examples/reproduce.py                 # every missing cell, in order
    python examples/reproduce.py --cells 2       # at most two more cells
    KERAS_BACKEND=jax python examples/reproduce.py
    python examples/reproduce.py --normalization layer --only aprelu:1

The network and optimizer are `mnist_cnn.build_reference_resnet` and
`mnist_cnn.compile_reference`: momentum SGD at 0.1, x0.1 every 2,000 steps,
batch 100, 10 epochs on the first 55,000 training images (5,500 steps),
tested on all 10,000 test images; inputs zero-centred per pixel. Noise is
white Gaussian at the cell's SNR, one draw per image (as in notebook 03),
added before centring; train and test get different draws.

Each finished cell appends one record to --results (a JSON list), written
atomically, so a run that is stopped loses only the cell it was on, and the
next run continues where it stopped. A record holds `activation`, `snr_db`
(null for clean images), `seed`, `steps`, `epochs`, `train_accuracy` (on the
training images, in inference mode, as the authors' script reports it),
`test_accuracy`, `seconds` (of `fit`), `backend` and `normalization` (that
of APReLU's sub-network, `--normalization`: the authors' `"batch"` by
default; None for the other activations). A cell counts as done when a
record with its activation, normalization, level, seed and number of steps
exists.
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
import keras  # noqa: E402
import mnist_cnn  # noqa: E402
import mnist_data  # noqa: E402
import numpy as np  # noqa: E402
import records  # noqa: E402

RESULTS = records.RESULTS
KEYS = records.KEYS
TRAIN_IMAGES = 55_000
EPOCHS = 10


def cells():
    """(activation, snr_db, seed) in the order they run: ReLU and APReLU at
    1 dB for seeds 0 and 1, clean for seed 0, then PReLU, then seed 2."""
    order = []
    for seed in (0, 1):
        order += [("relu", 1, seed), ("aprelu", 1, seed)]
    order += [("relu", None, 0), ("aprelu", None, 0)]
    order += [("prelu", 1, 0), ("prelu", 1, 1), ("prelu", None, 0)]
    order += [(name, 1, 2) for name in ("relu", "aprelu", "prelu")]
    return order


load = records.load
save = records.save


def data(snr_db, seed, train_images):
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data(verbose=False)
    x_train, y_train = x_train[:train_images], y_train[:train_images]
    x_train, x_test = mnist_cnn.prepare(x_train), mnist_cnn.prepare(x_test)
    level = 0 if snr_db is None else snr_db
    x_train = awgn.add_white_noise(
        x_train, snr_db, seed=np.random.SeedSequence([seed, level + 100, 0])
    )
    x_test = awgn.add_white_noise(
        x_test, snr_db, seed=np.random.SeedSequence([seed, level + 100, 1])
    )
    x_train, x_test = mnist_cnn.zero_centred(x_train, x_test)
    return (x_train, y_train), (x_test, y_test)


def train(
    activation,
    snr_db,
    seed,
    *,
    epochs,
    train_images,
    max_steps=None,
    normalization="batch",
):
    """Trains one cell and returns its record."""
    (x_train, y_train), (x_test, y_test) = data(snr_db, seed, train_images)
    batch = mnist_cnn.REFERENCE_BATCH_SIZE
    steps_per_epoch = -(-len(x_train) // batch)
    if max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, max_steps)
        epochs = 1
    model = mnist_cnn.compile_reference(
        mnist_cnn.build_reference_resnet(
            activation, seed=seed, normalization=normalization
        )
    )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch if max_steps is not None else None,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    steps = len(history.history["loss"]) * steps_per_epoch
    train_accuracy = model.evaluate(x_train, y_train, batch_size=1000, verbose=0)[1]
    test_accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1]
    return {
        "activation": activation,
        "snr_db": snr_db,
        "seed": seed,
        "steps": int(steps),
        "epochs": int(epochs),
        "train_accuracy": float(train_accuracy),
        "test_accuracy": float(test_accuracy),
        "seconds": round(seconds, 1),
        "backend": keras.config.backend(),
        "normalization": normalization if activation == "aprelu" else None,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument(
        "--cells", type=int, help="run at most this many missing cells, then stop"
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        help="train each cell for at most this many steps, one epoch (a smoke "
        "test: use another --results file)",
    )
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES)
    parser.add_argument(
        "--normalization",
        default="batch",
        choices=("batch", "layer", "none"),
        help="APReLU's sub-network normalization (default: the authors' batch)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="ACTIVATION:SNR",
        help="only the cells of this activation at this SNR ('clean' for "
        "none), e.g. aprelu:1; may be repeated",
    )
    args = parser.parse_args(argv)
    for flag in ("cells", "max_steps", "train_images"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            name = "--" + flag.replace("_", "-")
            parser.error(f"{name} must be >= 1. Received: {name}={value}")
    return args


def main(argv=None):
    args = parse_args(argv)
    steps = (
        min(args.max_steps, -(-args.train_images // mnist_cnn.REFERENCE_BATCH_SIZE))
        if args.max_steps
        else EPOCHS * -(-args.train_images // mnist_cnn.REFERENCE_BATCH_SIZE)
    )
    finished = load(args.results)

    def normalization(activation):
        return args.normalization if activation == "aprelu" else None

    done = {
        (r["activation"], r["normalization"], r["snr_db"], r["seed"], r["steps"])
        for r in finished
    }
    todo = [
        (a, level, seed)
        for a, level, seed in cells()
        if (a, normalization(a), level, seed, steps) not in done
        and (not args.only or f"{a}:{'clean' if level is None else level}" in args.only)
    ]
    if args.cells is not None:
        todo = todo[: args.cells]
    backend = keras.config.backend()
    print(f"{len(todo)} cell(s) to run, {steps} steps each, on {backend}")
    for activation, snr_db, seed in todo:
        record = train(
            activation,
            snr_db,
            seed,
            epochs=EPOCHS,
            train_images=args.train_images,
            max_steps=args.max_steps,
            normalization=normalization(activation),
        )
        finished = load(args.results) + [record]
        save(args.results, finished)
        print(json.dumps(record), flush=True)
    return finished


if __name__ == "__main__":
    main()
