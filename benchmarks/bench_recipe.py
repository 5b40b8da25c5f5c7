"""Training-time ratios of the authors' network under their recipe.

`examples/reproduce.py` records how long each (activation, level, seed)
cell took, but its runs shared the machine with other work, so those times
are not comparable. This benchmark measures what the evidence page quotes:
the time of a training epoch of `mnist_cnn.build_reference_resnet` with
each activation, over the time with ReLU, under `compile_reference` (momentum
SGD, batch 100). Every model is built, compiled and warmed up in this one
process; the timed rounds run the activations interleaved, each a `fit` of
the same images, and each ratio is the median over rounds of (time / ReLU's
time in that round).

    python benchmarks/bench_recipe.py                   # JAX, as the runner
    python benchmarks/bench_recipe.py --backend tensorflow
    python benchmarks/bench_recipe.py --quick           # a smoke run
"""

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time

from _argv import backend_argument

os.environ["KERAS_BACKEND"] = backend_argument(sys.argv[1:], default="jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))

import keras  # noqa: E402
import mnist_cnn  # noqa: E402
import numpy as np  # noqa: E402

ACTIVATIONS = ("relu", "prelu", "aprelu")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="jax")
    parser.add_argument(
        "--steps", type=int, default=60, help="training steps per timed fit"
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds = 5, 2
    if args.steps < 1:
        parser.error(f"--steps must be at least 1. Received: --steps={args.steps}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1. Received: --rounds={args.rounds}")
    return args


def main(argv=None):
    args = parse_args(argv)
    batch = mnist_cnn.REFERENCE_BATCH_SIZE
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.steps * batch, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, len(x))
    models = {}
    for name in ACTIVATIONS:
        model = mnist_cnn.compile_reference(
            mnist_cnn.build_reference_resnet(name, seed=0)
        )
        model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, verbose=0)
        models[name] = model

    times = {name: [] for name in ACTIVATIONS}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
            times[name].append(time.perf_counter() - start)

    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Keras {keras.__version__}, "
        f"backend {keras.config.backend()}, Python {platform.python_version()}"
    )
    print(
        f"the authors' network, batch {batch}, {args.steps} steps per fit, "
        f"{args.rounds} rounds"
    )
    print(f"ReLU: {1000 * statistics.median(times['relu']) / args.steps:.1f} ms/step")
    for name in ACTIVATIONS[1:]:
        ratios = [t / r for t, r in zip(times[name], times["relu"], strict=True)]
        print(
            f"{name:7s} / relu: {statistics.median(ratios):.2f}x "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f}x)"
        )


if __name__ == "__main__":
    main()
