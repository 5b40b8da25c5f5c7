"""ROAD's time per 224 x 224 image: `viz.metrics.road` against
pytorch-grad-cam 1.5.7's `ROADCombined` (both orders, 9 percentiles each),
on the same model, images and maps, in one process, interleaved.

Both spend their time in the sparse solves of the imputation (one per image
and percentile and order); the model is a small CNN so that its forward
passes count little. pytorch-grad-cam scores a torch module, so this runs
on the PyTorch backend, the Keras model wrapped as the NCHW module their
metric calls. Their metric modules are loaded alone, as in
tests/viz/test_road.py (their package imports torchvision and OpenCV).
A ratio above 1 means ours is faster.

    python benchmarks/bench_road.py            # 4 images, 3 rounds
    python benchmarks/bench_road.py --quick    # 1 image, 1 round
"""

import argparse
import os
import pathlib
import platform
import sys
import time

os.environ["KERAS_BACKEND"] = "torch"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from keras_aprelu.viz import metrics  # noqa: E402
from tests.viz import test_road  # noqa: E402

SIZE = 224


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, rounds = (1, 1) if args.quick else (4, 3)
    road, confidence = test_road.load_their_road()

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 5, strides=4, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    rng = np.random.default_rng(0)
    images = rng.random((count, SIZE, SIZE, 3)).astype("float32")
    maps = rng.random((count, SIZE, SIZE)).astype("float32")

    class NCHW(torch.nn.Module):
        def forward(self, x):
            return model(x.permute(0, 2, 3, 1), training=False)

    classes = np.argmax(keras.ops.convert_to_numpy(model(images)), axis=1)
    targets = [lambda out, c=int(c): out[c] for c in classes]
    x_torch = torch.tensor(np.moveaxis(images, -1, 1))
    percentiles = (10, 20, 30, 40, 50, 60, 70, 80, 90)

    def theirs():
        # ROADCombined, its imputer handed the mask as NumPy (NumPy 2).
        scores = {}
        for name, remove in (
            ("morf", confidence.RemoveMostRelevantFirst),
            ("lerf", confidence.RemoveLeastRelevantFirst),
        ):
            imputer = test_road.numpy_mask(road.NoisyLinearImputer())
            scores[name] = np.mean(
                [
                    confidence.PerturbationConfidenceMetric(remove(p, imputer))(
                        x_torch, maps, targets, NCHW()
                    )
                    for p in percentiles
                ],
                axis=0,
            )
        return (scores["lerf"] - scores["morf"]) / 2

    def ours():
        return metrics.road(model, images, maps, percentiles=percentiles)

    times = {"ours": [], "theirs": []}
    with torch.no_grad():
        ours()  # compiled once
        for _ in range(rounds):
            for name, fn in (("ours", ours), ("theirs", theirs)):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) / count)
    ratio = np.median(np.array(times["theirs"]) / np.array(times["ours"]))
    print(
        f"keras {keras.__version__}, torch {torch.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {count} images of "
        f"{SIZE}x{SIZE}x3, 2 orders x 9 percentiles, {rounds} rounds"
    )
    print(
        f"seconds per image: ours {np.median(times['ours']):.2f}, "
        f"pytorch-grad-cam {np.median(times['theirs']):.2f}"
    )
    print(f"pytorch-grad-cam's time / ours: {ratio:.2f}   (goal >= 1.0)")


if __name__ == "__main__":
    main()
