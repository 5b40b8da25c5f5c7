"""Where a training step of the MNIST-sized CNN spends its time, per op.

Profiles the TensorFlow training or inference step (Keras defaults: no XLA
on a CPU) with TensorFlow's profiler, reads the trace it writes (XSpace protobuf)
and prints the time per op type and per op, for the CNN with ReLU and with
APReLU, so that the difference between the two is measured, not guessed.

    python benchmarks/profile_aprelu.py [--steps 20] [--batch 128]
        [--variant APReLU] [--mode train|inference]
"""

import argparse
import collections
import glob
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_layers  # noqa: E402


def profile(name, steps, batch, mode):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=batch)
    keras.utils.set_random_seed(0)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--variant", default="APReLU")
    parser.add_argument("--mode", choices=("train", "inference"), default="train")
    args = parser.parse_args()
    base_type, _ = profile("relu", args.steps, args.batch, args.mode)
    per_type, per_op = profile(args.variant, args.steps, args.batch, args.mode)
    print(f"ms per {args.mode} step of op time, batch {args.batch}, {args.steps} steps")
    print(
        f"  total: relu {sum(base_type.values()):.2f}, "
        f"{args.variant} {sum(per_type.values()):.2f}"
    )
    print("  by op type (variant minus relu, largest first):")
    diff = {k: per_type[k] - base_type.get(k, 0.0) for k in per_type}
    for kind, extra in sorted(diff.items(), key=lambda kv: -kv[1])[:15]:
        print(f"    {kind:<32}{per_type[kind]:8.3f}{extra:+9.3f}")
    print("  slowest ops of the variant:")
    for name, ms in per_op.most_common(20):
        print(f"    {ms:8.3f}  {name}")


if __name__ == "__main__":
    main()
