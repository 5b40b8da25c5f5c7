"""Overhead of keras_aprelu.callbacks on the MNIST demo's training epochs.

The demo's model (examples/mnist_cnn.py with APReLU), its data (54,000
training images, batch 128) and its callbacks (`mnist_demo.py --log-dir`:
ActivationMonitor on 1,000 test images and AttributionMaps of saliency,
integrated gradients and HiResCAM on one digit per class), with every=1.
Epochs with and without the callbacks alternate in this one process, and
the ratio is the median epoch time with them over the median without.
The callbacks' own time per epoch is also timed directly.

    python benchmarks/bench_callbacks.py [--rounds 2] [--train 54000]
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import keras  # noqa: E402
import mnist_cnn  # noqa: E402
import mnist_data  # noqa: E402
import numpy as np  # noqa: E402

from keras_aprelu import callbacks  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, callbacks included (it runs last)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train", type=int, default=54000)
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data(verbose=False)
    x_train = mnist_cnn.prepare(x_train[: args.train])
    y_train = y_train[: args.train]
    x_test = mnist_cnn.prepare(x_test)
    model = mnist_cnn.compile_cnn(mnist_cnn.build_cnn("aprelu", seed=0))
    picks = [int(np.flatnonzero(y_test == d)[0]) for d in range(10)]
    folder = tempfile.mkdtemp()
    watch = [
        callbacks.ActivationMonitor(x_test[:1000], log_dir=folder),
        callbacks.AttributionMaps(
            x_test[picks],
            folder,
            methods=("saliency", "integrated_gradients", "hires_cam"),
            layer="act2",
        ),
    ]
    fit = dict(batch_size=128, epochs=1, verbose=0)
    model.fit(x_train[:2048], y_train[:2048], callbacks=watch, **fit)  # warm up
    plain, watched = [], []
    for _ in range(args.rounds):
        for extra, times in (([], plain), (watch, watched)):
            timer = EpochTimer()
            model.fit(x_train, y_train, callbacks=[*extra, timer], **fit)
            times.extend(timer.times)
    own = []
    for epoch in range(5):
        start = time.perf_counter()
        for callback in watch:
            callback.on_epoch_end(epoch, {})
        own.append(time.perf_counter() - start)
    for callback in watch:
        callback.on_train_end()
    epoch = float(np.median(plain))
    print(
        f"keras {keras.__version__}, {os.cpu_count()} cores, "
        f"{len(x_train)} training images, {args.rounds} epochs per side"
    )
    print(f"  epoch without callbacks: median {epoch:.1f} s")
    print(f"  epoch with callbacks:    median {np.median(watched):.1f} s")
    print(f"  ratio: {np.median(watched) / epoch:.3f}x (goal <= 1.05x)")
    print(
        f"  the callbacks' own time per epoch: median {np.median(own):.2f} s, "
        f"{np.median(own) / epoch:.1%} of an epoch"
    )


if __name__ == "__main__":
    main()
