"""Step-time ratios of an MNIST-sized CNN under each activation.

Every variant is built, compiled and warmed up in this one process; the
timed rounds then run the variants interleaved, and each ratio is the median
over rounds of (variant time / ReLU time) within the same round, so that a
noisy, shared machine slows both sides of a ratio alike.

    python benchmarks/bench_layers.py               # full run, a few minutes
    python benchmarks/bench_layers.py --quick       # a smoke run
    python benchmarks/bench_layers.py --memory      # also peak-memory ratios

`--memory` runs each forward+backward once in a fresh subprocess (Linux) and
reads how far its resident memory peaks above where it stood just before.
"""

import argparse
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

import keras_aprelu  # noqa: E402

# ---------------------------------------------------------------------------
# Autodiff twins of the custom-gradient kernels: the same forward, written so
# that TensorFlow differentiates it itself.


class AutodiffAPReLU(keras.layers.Layer):
    """APReLU as a new user would write it from keras.ops (same structure)."""

    def build(self, input_shape):
        c = input_shape[-1]
        self.dense_1 = keras.layers.Dense(c, kernel_initializer="he_normal")
        self.bn_1 = keras.layers.BatchNormalization(momentum=0.9)
        self.dense_2 = keras.layers.Dense(c, kernel_initializer="he_normal")
        self.bn_2 = keras.layers.BatchNormalization(momentum=0.9)
        self.axes = list(range(1, len(input_shape) - 1))

    def call(self, x, training=None):
        negative = ops.minimum(x, 0.0)
        positive = ops.relu(x)
        z = ops.concatenate(
            [ops.mean(negative, self.axes), ops.mean(positive, self.axes)], -1
        )
        z = ops.relu(self.bn_1(self.dense_1(z), training=training))
        alpha = ops.sigmoid(self.bn_2(self.dense_2(z), training=training))
        for _ in self.axes:
            alpha = ops.expand_dims(alpha, 1)
        return positive + alpha * negative


class AutodiffMaxout(keras.layers.Layer):
    def __init__(self, num_units, **kwargs):
        super().__init__(**kwargs)
        self.num_units = num_units

    def call(self, x):
        shape = ops.shape(x)
        grouped = ops.reshape(
            x, (-1, *shape[1:-1], self.num_units, x.shape[-1] // self.num_units)
        )
        return ops.max(grouped, axis=-1)


class CustomGradRReLU(keras.layers.Layer):
    """RReLU in training mode with a hand-written gradient, for comparison."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(0)

    def call(self, x, training=None):
        slopes = keras.random.uniform(
            ops.shape(x), 1 / 8, 1 / 3, dtype=x.dtype, seed=self.seed_generator
        )

        @tf.custom_gradient
        def f(x):
            m = tf.where(x >= 0, tf.ones_like(slopes), slopes)

            def grad(dy):
                return dy * m

            return x * m, grad

        return f(x)


class TrainingRReLU(keras.layers.Layer):
    """keras_aprelu.RReLU forced into training mode (random slopes)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras_aprelu.RReLU(seed=0)

    def call(self, x, training=None):
        return self.inner(x, training=True)


def _maxout(cls):
    # Maxout halves the channels, so the conv before it produces twice as many.
    return lambda c: [keras.layers.Conv2D(2 * c, 1), cls(c)]


# name -> factory(channels) -> the layers that follow a conv with `channels`.
ACTIVATIONS = {
    "relu": lambda c: [keras.layers.ReLU()],
    "keras.PReLU": lambda c: [keras.layers.PReLU(shared_axes=[1, 2])],
    "PReLU": lambda c: [keras_aprelu.PReLU()],
    "APReLU": lambda c: [keras_aprelu.APReLU()],
    "APReLU-autodiff": lambda c: [AutodiffAPReLU()],
    "RReLU-train": lambda c: [TrainingRReLU()],
    "RReLU-train-customgrad": lambda c: [CustomGradRReLU()],
    "Maxout": _maxout(keras_aprelu.Maxout),
    "Maxout-autodiff": _maxout(AutodiffMaxout),
}


def make_activation(name, channels):
    return ACTIVATIONS[name](channels)


def make_cnn(activation):
    """Conv32-act-pool-Conv64-act-pool-Dense128-act-Dense10 on 28x28x1."""
    layers = [keras.Input((28, 28, 1))]
    layers += [keras.layers.Conv2D(32, 3, padding="same")]
    layers += make_activation(activation, 32)
    layers += [keras.layers.MaxPooling2D(), keras.layers.Conv2D(64, 3, padding="same")]
    layers += make_activation(activation, 64)
    layers += [keras.layers.MaxPooling2D(), keras.layers.Flatten()]
    layers += [keras.layers.Dense(128), keras.layers.ReLU(), keras.layers.Dense(10)]
    return keras.Sequential(layers)


def timed(fn, steps):
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def step_ratios(names, *, jit_compile, batch, steps, rounds, mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=batch)
    fns = {}
    for name in names:
        keras.utils.set_random_seed(0)
        model = make_cnn(name)
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit_compile,
        )
        if mode == "train":
            fn = lambda m=model: m.train_on_batch(x, y)  # noqa: E731
        else:
            fn = lambda m=model: m.predict_on_batch(x)  # noqa: E731
        for _ in range(3):
            fn()
        fns[name] = fn
    times = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            times[name].append(timed(fns[name], steps))
    base = np.array(times[names[0]])
    return {
        name: (float(np.median(np.array(t) / base)), float(np.median(t)))
        for name, t in times.items()
    }


def print_table(title, result):
    print(f"\n{title}")
    print(f"  {'variant':<26}{'ratio':>8}{'median ms':>12}")
    for name, (ratio, seconds) in result.items():
        print(f"  {name:<26}{ratio:>7.2f}x{seconds * 1e3:>12.1f}")


MEMORY_CASES = {
    "PReLU": ("PReLU", "keras.PReLU"),
    "APReLU": ("APReLU", "APReLU-autodiff"),
    "Maxout": ("Maxout", "Maxout-autodiff"),
    "RReLU": ("RReLU-train-customgrad", "RReLU-train"),
}


def peak_memory_child(name):
    """Forward+backward of one activation on a large tensor; prints MiB."""
    x = tf.random.normal((64, 64, 64, 64))
    layers = make_activation(name, 64)
    for layer in layers:
        layer.build(x.shape if layer is layers[0] else (64, 64, 64, 128))
    fn = tf.function(lambda x: _grad(layers, x))
    fn(tf.random.normal((2, 64, 64, 64)))  # trace on a small batch
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current size
    fn(x)
    print((_status_kib("VmHWM") - before) / 1024)


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _grad(layers, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x
        for layer in layers:
            y = layer(y, training=True)
        loss = tf.reduce_sum(y * y)
    return tape.gradient(loss, x)


def peak_memory(name):
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds")
    parser.add_argument("--memory", action="store_true", help="peak memory too")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args.memory_child)
        return
    steps, rounds = (3, 3) if args.quick else (10, 9)
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"batch {args.batch}, {rounds} rounds of {steps} steps"
    )
    names = list(ACTIVATIONS)
    common = dict(batch=args.batch, steps=steps, rounds=rounds)
    print_table(
        "Training step, Keras defaults (no XLA on CPU), ratio to ReLU",
        step_ratios(names, jit_compile=False, mode="train", **common),
    )
    print_table(
        "Training step, jit_compile=True, ratio to ReLU with jit_compile=True",
        step_ratios(
            ["relu", "PReLU", "APReLU", "APReLU-autodiff"],
            jit_compile=True,
            mode="train",
            **common,
        ),
    )
    print_table(
        "Inference (predict_on_batch), ratio to ReLU",
        step_ratios(
            ["relu", "keras.PReLU", "PReLU", "APReLU", "APReLU-autodiff"],
            jit_compile=False,
            mode="predict",
            **common,
        ),
    )
    if args.memory:
        print("\nPeak memory of one forward+backward on (64, 64, 64, 64) floats")
        for label, (ours, twin) in MEMORY_CASES.items():
            a, b = peak_memory(ours), peak_memory(twin)
            line = f"{ours} {a:5.0f} MiB vs {twin} {b:5.0f} MiB"
            print(f"  {label:<8}{line}: {a / b:.2f}x")


if __name__ == "__main__":
    main()
