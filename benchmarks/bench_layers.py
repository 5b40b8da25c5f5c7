"""Step-time ratios of an MNIST-sized CNN under each activation, per backend.

Every variant is built, compiled and warmed up in this one process; the
timed rounds then run the variants interleaved, and each ratio is the median
over rounds of (variant time / reference time) within the same round, so
that a noisy, shared machine slows both sides of a ratio alike.

    python benchmarks/bench_layers.py                    # TensorFlow
    python benchmarks/bench_layers.py --backend jax      # or torch
    python benchmarks/bench_layers.py --backend all      # each in turn
    python benchmarks/bench_layers.py --quick            # a smoke run
    python benchmarks/bench_layers.py --memory           # peak memory too
    python benchmarks/bench_layers.py --variants APReLU-batch APReLU  # only these

Each backend runs under its own Keras defaults: no XLA on a CPU-only
TensorFlow, jit on JAX, eager on PyTorch. `--memory` runs each
forward+backward once in a fresh subprocess (Linux) and reads how far its
resident memory peaks above where it stood just before.
"""

import argparse
import os
import platform
import subprocess
import sys
import time

from _argv import backend_argument

BACKEND = backend_argument(sys.argv[1:], default="tensorflow")
os.environ["KERAS_BACKEND"] = "tensorflow" if BACKEND == "all" else BACKEND
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import keras_aprelu  # noqa: E402
from keras_aprelu import _ops  # noqa: E402

if keras.config.backend() == "tensorflow":
    import tensorflow as tf

# ---------------------------------------------------------------------------
# Autodiff twins of the custom-gradient kernels: the same forward, written so
# that TensorFlow differentiates it itself.


class AutodiffAPReLU(keras.layers.Layer):
    """APReLU as a new user would write it from keras.ops (the default
    structure: no normalization in the sub-network)."""

    def build(self, input_shape):
        c = input_shape[-1]
        self.dense_1 = keras.layers.Dense(c, kernel_initializer="he_normal")
        self.dense_2 = keras.layers.Dense(c, kernel_initializer="he_normal")
        self.axes = list(range(1, len(input_shape) - 1))

    def call(self, x, training=None):
        negative = ops.minimum(x, 0.0)
        positive = ops.relu(x)
        z = ops.concatenate(
            [ops.mean(negative, self.axes), ops.mean(positive, self.axes)], -1
        )
        z = ops.relu(self.dense_1(z))
        alpha = ops.sigmoid(self.dense_2(z))
        for _ in self.axes:
            alpha = ops.expand_dims(alpha, 1)
        return positive + alpha * negative


class MeanGatedReLU(keras.layers.Layer):
    """relu(x) * sigmoid(mean(x)), a floor for APReLU, not a layer to use.

    The least work an activation does whose output depends on a pooling of
    its own input, as APReLU's does: one reduction over the spatial axes
    and one elementwise pass, so that the backend can no longer fuse the
    activation into the convolution before it, nor the pooling into the
    output."""

    def call(self, x):
        pooled = ops.mean(x, axis=list(range(1, len(x.shape) - 1)), keepdims=True)
        return ops.relu(x) * ops.sigmoid(pooled)


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


class UnfusedReLU(keras.layers.Layer):
    """max(x, 0): the ReLU that TensorFlow's graph optimizer does not fuse
    into the convolution before it, as it fuses tf.nn.relu."""

    def call(self, x):
        return ops.maximum(x, 0.0)


class GatherMaxout(AutodiffMaxout):
    """Maxout gathered at the argmax, differentiated by autodiff: the
    package's kernel on PyTorch, and on JAX before it got its custom
    gradient."""

    def call(self, x):
        shape = ops.shape(x)
        grouped = ops.reshape(
            x, (-1, *shape[1:-1], self.num_units, x.shape[-1] // self.num_units)
        )
        winner = ops.argmax(grouped, axis=-1, keepdims=True)
        return ops.squeeze(ops.take_along_axis(grouped, winner, axis=-1), axis=-1)


# The output stages the package used before, differentiated by autodiff:
# where(x > 0, x, alpha * x), its kernel on JAX and TensorFlow, which
# PyTorch used too before relu + alpha * clip; and that clip form, PyTorch's
# kernel before it got its hand-written backward.


def _where_form(x, alpha):
    return ops.where(x > 0, x, alpha * x)


def _clip_form(x, alpha):
    return ops.relu(x) + alpha * ops.clip(x, float("-inf"), 0.0)


def _with_output_form(form):
    """PReLU and APReLU twins whose output is `form(x, alpha)`."""

    class FormPReLU(keras_aprelu.PReLU):
        def call(self, inputs):
            return form(inputs, ops.convert_to_tensor(self.alpha))

    class FormAPReLU(keras_aprelu.APReLU):
        def call(self, inputs, training=None):
            inputs, alpha = self._slopes(inputs, training)
            shape = _ops.slope_shape(
                len(inputs.shape),
                self._channel_axis,
                inputs.shape[self._channel_axis],
            )
            return form(inputs, ops.reshape(alpha, shape))

    return FormPReLU, FormAPReLU


WherePReLU, WhereAPReLU = _with_output_form(_where_form)
ClipPReLU, ClipAPReLU = _with_output_form(_clip_form)
InPlacePReLU, InPlaceAPReLU = _with_output_form(
    lambda x, alpha: custom_parametric_relu(x, alpha, forward=_in_place_form)
)


class ReluMeansAPReLU(keras_aprelu.APReLU):
    """APReLU pooling mean(relu(x)) and mean(x) - mean(relu(x)), by
    autodiff: the package's form on JAX before the |x| form."""

    def _slopes(self, inputs, training):
        positive = ops.mean(ops.relu(inputs), self._pool_axes)
        negative = ops.mean(inputs, self._pool_axes) - positive
        z = ops.concatenate([negative, positive], axis=-1)
        norm_1, norm_2 = self.normalization_layers()
        z = ops.relu(norm_1(self.dense_1(z), training=training))
        z = norm_2(self.dense_2(z), training=training)
        return inputs, ops.sigmoid(z)


# ---------------------------------------------------------------------------
# Custom-gradient twins in keras.ops.custom_gradient, for JAX and PyTorch:
# what a hand-written backward would buy there over the autodiff kernels the
# package uses on those backends.


def custom_parametric_relu(x, alpha, forward=_where_form):
    """`forward(x, alpha)` with a backward that keeps only `x` and `alpha`."""
    # alpha gets the rank of x, so that its broadcast axes are the size-1 ones.
    rank = len(x.shape)
    alpha = ops.reshape(alpha, (1,) * (rank - len(alpha.shape)) + tuple(alpha.shape))
    broadcast = [axis for axis in range(rank) if alpha.shape[axis] == 1]

    @ops.custom_gradient
    def f(x, alpha):
        def grad(*args, upstream=None):
            dy = _ops._upstream(args, upstream)
            dx = ops.where(x > 0, dy, dy * alpha)
            dalpha = ops.sum(dy * ops.minimum(x, 0), axis=broadcast, keepdims=True)
            return dx, dalpha

        return forward(x, alpha), grad

    return f(x, alpha)


def _in_place_form(x, alpha):
    """PyTorch: clamp(x, max=0), scaled by alpha and added to relu(x) in
    place, three passes and one temporary. With the backward above, the
    package's kernel on PyTorch before torch._prelu_kernel."""
    import torch

    y = torch.clamp(x, max=0.0)
    y.mul_(alpha)
    return y.add_(torch.relu(x))


def custom_signed_means(x, axes):
    """concat(mean(min(x, 0)), mean(relu(x))) over `axes`, one output."""
    count = _ops._count(x, axes)

    @ops.custom_gradient
    def f(x):
        def grad(*args, upstream=None):
            dz = _ops._upstream(args, upstream) / count
            d_negative, d_positive = ops.split(dz, 2, axis=-1)
            for axis in axes:
                d_negative = ops.expand_dims(d_negative, axis)
                d_positive = ops.expand_dims(d_positive, axis)
            return ops.where(x > 0, d_positive, d_negative)

        positive = ops.sum(ops.relu(x), axis=axes) / count
        negative = ops.sum(x, axis=axes) / count - positive
        return ops.concatenate([negative, positive], axis=-1), grad

    return f(x)


class CustomGradAPReLU(keras_aprelu.APReLU):
    """APReLU whose pooling and output stage have keras.ops custom gradients."""

    def call(self, inputs, training=None):
        z = custom_signed_means(inputs, self._pool_axes)
        norm_1, norm_2 = self.normalization_layers()
        z = ops.relu(norm_1(self.dense_1(z), training=training))
        alpha = ops.sigmoid(norm_2(self.dense_2(z), training=training))
        for axis in self._pool_axes:
            alpha = ops.expand_dims(alpha, axis)
        return custom_parametric_relu(inputs, alpha)


class CustomGradPReLU(keras_aprelu.PReLU):
    def call(self, inputs):
        return custom_parametric_relu(inputs, ops.convert_to_tensor(self.alpha))


class CustomGradMaxout(keras.layers.Layer):
    """Maxout over the last axis that keeps only the argmax for the backward."""

    def __init__(self, num_units, **kwargs):
        super().__init__(**kwargs)
        self.num_units = num_units

    def call(self, x):
        units = self.num_units
        group = x.shape[-1] // units
        shape = ops.shape(x)

        @ops.custom_gradient
        def f(x):
            grouped = ops.reshape(x, (-1, *shape[1:-1], units, group))
            winner = ops.argmax(grouped, axis=-1)

            def grad(*args, upstream=None):
                dy = _ops._upstream(args, upstream)
                mask = ops.one_hot(winner, group, dtype=dy.dtype)
                return ops.reshape(mask * ops.expand_dims(dy, -1), shape)

            return ops.max(grouped, axis=-1), grad

        return f(x)


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
    "relu-unfused": lambda c: [UnfusedReLU()],
    "keras.PReLU": lambda c: [keras.layers.PReLU(shared_axes=[1, 2])],
    "PReLU": lambda c: [keras_aprelu.PReLU()],
    "APReLU": lambda c: [keras_aprelu.APReLU()],
    # The paper's sub-network, the default until 0.2.0.
    "APReLU-batch": lambda c: [keras_aprelu.APReLU(normalization="batch")],
    "floor-mean-gated": lambda c: [MeanGatedReLU()],
    "APReLU-autodiff": lambda c: [AutodiffAPReLU()],
    "RReLU-train": lambda c: [TrainingRReLU()],
    "RReLU-train-customgrad": lambda c: [CustomGradRReLU()],
    "Maxout": _maxout(keras_aprelu.Maxout),
    "Maxout-autodiff": _maxout(AutodiffMaxout),
    "Maxout-gather-autodiff": _maxout(GatherMaxout),
    "PReLU-where": lambda c: [WherePReLU()],
    "APReLU-where": lambda c: [WhereAPReLU()],
    "APReLU-relu-means": lambda c: [ReluMeansAPReLU()],
    "PReLU-clip-autodiff": lambda c: [ClipPReLU()],
    "APReLU-clip-autodiff": lambda c: [ClipAPReLU()],
    "PReLU-inplace-customgrad": lambda c: [InPlacePReLU()],
    "APReLU-inplace-customgrad": lambda c: [InPlaceAPReLU()],
    "PReLU-customgrad": lambda c: [CustomGradPReLU()],
    "APReLU-customgrad": lambda c: [CustomGradAPReLU()],
    "Maxout-customgrad": _maxout(CustomGradMaxout),
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
        # jit_compile: one setting for all, or {name: setting}, where a name
        # ending in "-xla" is its variant's CNN (a second timing of it).
        compile_with = jit_compile
        if isinstance(jit_compile, dict):
            compile_with = jit_compile.get(name, "auto")
        model = make_cnn(name.removesuffix("-xla"))
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=compile_with,
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


# Peak memory: ours against the twin, per backend. On TensorFlow ours has the
# custom gradients and the twin is autodiff. On JAX ours is autodiff and the
# twin has the keras.ops custom gradients, except Maxout, where ours has the
# custom gradient. On PyTorch ours runs the output stage (PReLU, APReLU)
# in torch._prelu_kernel, whose backward keeps only x and alpha, against
# relu + alpha * clip by autodiff, and autodiff for Maxout.
MEMORY_CASES = {
    "tensorflow": {
        "PReLU": ("PReLU", "keras.PReLU"),
        "APReLU": ("APReLU", "APReLU-autodiff"),
        "Maxout": ("Maxout", "Maxout-autodiff"),
        "RReLU": ("RReLU-train-customgrad", "RReLU-train"),
    },
    "jax": {
        "PReLU": ("PReLU", "PReLU-customgrad"),
        "APReLU": ("APReLU", "APReLU-customgrad"),
        "Maxout": ("Maxout", "Maxout-gather-autodiff"),
    },
    "torch": {
        "PReLU": ("PReLU", "PReLU-clip-autodiff"),
        "APReLU": ("APReLU", "APReLU-clip-autodiff"),
        "Maxout": ("Maxout", "Maxout-customgrad"),
    },
}
MEMORY_SHAPE = (64, 64, 64, 64)


def peak_memory_child(name):
    """Memory of one forward+backward of an activation on a large tensor,
    in MiB, printed: how far the resident memory peaks above where it stood
    (TensorFlow, PyTorch: traced and warmed up on a small batch first), or
    the temporary buffers XLA allocates for it (JAX, whose compilation of
    the large shape would otherwise count)."""
    x = np.random.default_rng(0).normal(size=MEMORY_SHAPE).astype("float32")
    layers = make_activation(name, MEMORY_SHAPE[-1])
    y = x[:2]
    for layer in layers:  # builds them
        y = layer(y)
    if keras.config.backend() == "jax":
        print(_jax_temp_bytes(layers, x) / 2**20)
        return
    fn = _gradient_function(layers)
    fn(x[:2])  # trace and allocate on a small batch
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current size
    fn(x)
    print((_status_kib("VmHWM") - before) / 1024)


def _jax_temp_bytes(layers, x):
    import jax

    def loss(x):
        # Batch norm's and the seed generator's updates stay in the scope.
        with keras.StatelessScope():
            return _forward(layers, x)

    compiled = jax.jit(jax.grad(loss)).lower(x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def _forward(layers, x):
    y = x
    for layer in layers:
        y = layer(y, training=True)
    return ops.sum(y * y)


def _gradient_function(layers):
    """x -> d sum(f(x)^2) / dx, on TensorFlow (compiled) or PyTorch."""
    backend = keras.config.backend()
    if backend == "tensorflow":

        def grad(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = _forward(layers, x)
            return tape.gradient(loss, x)

        compiled = tf.function(grad)
        return lambda x: compiled(tf.constant(x)).numpy()
    import torch

    def grad(x):
        x = torch.tensor(x, requires_grad=True)
        _forward(layers, x).backward()
        return x.grad.numpy()

    return grad


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_memory(name):
    out = subprocess.run(
        [sys.executable, __file__, "--backend", BACKEND, "--memory-child", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def versions():
    backend = keras.config.backend()
    if backend == "tensorflow":
        return f"tensorflow {tf.__version__}"
    if backend == "jax":
        import jax

        return f"jax {jax.__version__}"
    import torch

    return f"torch {torch.__version__}"


def run_backend(args):
    if args.memory_only:
        report_memory()
        return
    steps, rounds = (3, 3) if args.quick else (10, 9)
    backend = keras.config.backend()
    print(
        f"\n=== {backend}: keras {keras.__version__}, {versions()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"batch {args.batch}, {rounds} rounds of {steps} steps"
    )
    common = dict(batch=args.batch, steps=steps, rounds=rounds)
    if args.variants:
        for mode, title in (("train", "Training step"), ("predict", "Inference")):
            print_table(
                f"{title}, Keras defaults, ratio to {args.variants[0]}",
                step_ratios(args.variants, jit_compile="auto", mode=mode, **common),
            )
        return
    custom = {
        "tensorflow": [],
        "jax": ["PReLU-customgrad"],
        "torch": [
            "PReLU-customgrad",
            "PReLU-inplace-customgrad",
            "PReLU-where",
            "PReLU-clip-autodiff",
        ],
    }[backend]
    print_table(
        "PReLU training step, Keras defaults, ratio to keras.layers.PReLU "
        "(same sharing); goal <= 1.0x",
        step_ratios(
            ["keras.PReLU", "PReLU", *custom],
            jit_compile="auto",
            mode="train",
            **common,
        ),
    )
    twins = {
        "tensorflow": ["APReLU-autodiff", "RReLU-train-customgrad", "Maxout-autodiff"],
        "jax": ["APReLU-customgrad", "APReLU-relu-means", "Maxout-gather-autodiff"],
        "torch": [
            "APReLU-customgrad",
            "Maxout-customgrad",
            "APReLU-inplace-customgrad",
            "APReLU-where",
            "APReLU-clip-autodiff",
        ],
    }[backend]
    print_table(
        "Training step, Keras defaults, ratio to ReLU; APReLU goal <= 1.3x",
        step_ratios(
            ["relu", "relu-unfused", "keras.PReLU", "PReLU", "APReLU", "APReLU-batch"]
            + ["RReLU-train"]
            + ["Maxout", "floor-mean-gated"]
            + twins,
            jit_compile="auto",
            mode="train",
            **common,
        ),
    )
    print_table(
        "Inference (predict_on_batch), Keras defaults, ratio to ReLU; "
        "APReLU goal <= 1.2x",
        step_ratios(
            ["relu", "relu-unfused", "keras.PReLU", "PReLU", "APReLU", "APReLU-batch"]
            + ["floor-mean-gated"]
            + {
                "torch": [
                    "APReLU-inplace-customgrad",
                    "APReLU-where",
                    "APReLU-clip-autodiff",
                ],
                "jax": ["APReLU-relu-means"],
            }.get(backend, []),
            jit_compile="auto",
            mode="predict",
            **common,
        ),
    )
    if backend == "tensorflow":
        print_table(
            "Training step, jit_compile=True, ratio to ReLU with jit_compile=True",
            step_ratios(
                ["relu", "PReLU", "APReLU", "APReLU-autodiff"],
                jit_compile=True,
                mode="train",
                **common,
            ),
        )
        # XLA's ratios are to a slower ReLU: its absolute times, against
        # the default's, in one process.
        print_table(
            "Training step, ratio to ReLU under Keras defaults (no XLA)",
            step_ratios(
                ["relu", "APReLU", "relu-xla", "APReLU-xla"],
                jit_compile={"relu-xla": True, "APReLU-xla": True},
                mode="train",
                **common,
            ),
        )
    if args.memory:
        report_memory()


def report_memory():
    print(f"\nPeak memory of one forward+backward on {MEMORY_SHAPE} floats")
    for label, (ours, twin) in MEMORY_CASES[keras.config.backend()].items():
        a, b = peak_memory(ours), peak_memory(twin)
        line = f"{ours} {a:5.0f} MiB vs {twin} {b:5.0f} MiB"
        ratio = f"{a / b:.2f}x" if b > 0 else "n/a (no temporary buffer)"
        print(f"  {label:<8}{line}: {ratio}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        default="tensorflow",
        choices=["tensorflow", "jax", "torch", "all"],
        help="the Keras backend, or all three in turn",
    )
    parser.add_argument("--quick", action="store_true", help="few rounds")
    parser.add_argument("--memory", action="store_true", help="peak memory too")
    parser.add_argument(
        "--memory-only", action="store_true", help="peak memory, no step times"
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=sorted(ACTIVATIONS),
        metavar="NAME",
        help="only these, training and inference, as ratios to the first "
        "(e.g. --variants APReLU-batch APReLU relu)",
    )
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args.memory_child)
        return
    if args.backend == "all":
        for backend in ("tensorflow", "jax", "torch"):
            argv = [a for a in sys.argv[1:] if not a.startswith("--backend")]
            argv = [a for a in argv if a != "all"]
            subprocess.run(
                [sys.executable, __file__, "--backend", backend, *argv], check=True
            )
        return
    run_backend(args)


if __name__ == "__main__":
    main()
