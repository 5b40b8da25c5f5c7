"""Where a step of the MNIST-sized CNN spends its time, per op.

Profiles the training or inference step of the CNN with ReLU and with
APReLU under the backend's Keras defaults, and prints the time per op type
and per op, so that the difference between the two is measured, not
guessed.

- TensorFlow (no XLA on a CPU): Keras's own train and predict steps, read
  from TensorFlow's profiler trace (XSpace protobuf).
- JAX: the jitted forward (inference) or forward and backward (train: the
  gradient of the loss, without the optimizer), read from JAX's profiler
  trace; each XLA kernel is named with the op its HLO comes from.

    python benchmarks/profile_aprelu.py [--backend tensorflow|jax]
        [--steps 20] [--batch 128] [--variant APReLU]
        [--mode train|inference]
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# bench_layers sets KERAS_BACKEND from --backend: it comes before keras.
import bench_layers  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402


def _data(batch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=batch)
    keras.utils.set_random_seed(0)
    return x, y


def profile_tensorflow(name, steps, batch, mode):
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    x, y = _data(batch)
    model = bench_layers.make_cnn(name)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    if mode == "train":
        step = lambda: model.train_on_batch(x, y)  # noqa: E731
    else:
        step = lambda: model.predict_on_batch(x)  # noqa: E731
    for _ in range(5):
        step()
    folder = tempfile.mkdtemp()
    tf.profiler.experimental.start(folder)
    for _ in range(steps):
        step()
    tf.profiler.experimental.stop()
    (path,) = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    per_type = collections.Counter()
    per_op = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            # The executor's threads; each op's event spans its run,
            # including the intra-op (Eigen) threads it waits for.
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                full = names.get(event.metadata_id, "?")  # "op_name:OpType"
                op, _, kind = full.rpartition(":")
                if not op or "::" in full:
                    continue  # the thread pool's own events
                per_type[kind] += event.duration_ps / 1e9 / steps  # ms/step
                per_op[full] += event.duration_ps / 1e9 / steps
    return per_type, per_op


def profile_jax(name, steps, batch, mode):
    import jax

    x, y = _data(batch)
    model = bench_layers.make_cnn(name)
    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def forward(trainable, frozen, x):
        return model.stateless_call(trainable, frozen, x, training=False)[0]

    def gradient(trainable, frozen, x, y):
        def value(trainable):
            logits, _ = model.stateless_call(trainable, frozen, x, training=True)
            return loss(y, logits)

        return jax.grad(value)(trainable)

    fn, args = (
        (forward, (trainable, frozen, x))
        if mode == "inference"
        else (gradient, (trainable, frozen, x, y))
    )
    compiled = jax.jit(fn).lower(*args).compile()
    # Each kernel of the executable, with the op its HLO instruction came from.
    instruction = r"%(\S+) = [^\n]*?metadata=\{op_name=\"([^\"]+)\""
    origin = dict(re.findall(instruction, compiled.as_text()))
    for _ in range(5):
        jax.block_until_ready(compiled(*args))
    folder = tempfile.mkdtemp()
    with jax.profiler.trace(folder, create_perfetto_trace=True):
        for _ in range(steps):
            out = compiled(*args)
        jax.block_until_ready(out)
    (path,) = glob.glob(os.path.join(folder, "**", "*perfetto*"), recursive=True)
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    per_type = collections.Counter()
    per_op = collections.Counter()
    for event in events:
        kernel = event.get("name")
        if event.get("ph") != "X" or kernel not in origin:
            continue
        op = origin[kernel].removeprefix(f"jit({fn.__name__})/")
        ms = event["dur"] / 1e3 / steps  # the trace counts microseconds
        per_type[op.rpartition("/")[2]] += ms
        per_op[f"{kernel}  {op}"] += ms
    return per_type, per_op


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=("tensorflow", "jax"), default="tensorflow"
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--variant", default="APReLU")
    parser.add_argument("--mode", choices=("train", "inference"), default="train")
    args = parser.parse_args()
    profile = {"tensorflow": profile_tensorflow, "jax": profile_jax}[args.backend]
    base_type, base_op = profile("relu", args.steps, args.batch, args.mode)
    per_type, per_op = profile(args.variant, args.steps, args.batch, args.mode)
    print(
        f"{args.backend}: ms per {args.mode} step of op time, "
        f"batch {args.batch}, {args.steps} steps"
    )
    print(
        f"  total: relu {sum(base_type.values()):.2f}, "
        f"{args.variant} {sum(per_type.values()):.2f}"
    )
    print("  by op type (variant minus relu, largest first):")
    diff = {k: per_type[k] - base_type.get(k, 0.0) for k in per_type}
    for kind, extra in sorted(diff.items(), key=lambda kv: -kv[1])[:15]:
        print(f"    {kind:<32}{per_type[kind]:8.3f}{extra:+9.3f}")
    for label, ops in (("relu", base_op), (args.variant, per_op)):
        print(f"  slowest ops of {label}:")
        for name, ms in ops.most_common(20 if label != "relu" else 8):
            print(f"    {ms:8.3f}  {name}")


if __name__ == "__main__":
    main()
