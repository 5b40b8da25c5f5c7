"""Trains a small CNN with APReLU (or another activation) on MNIST, saves it
and writes the figures of keras_aprelu.viz.

    python examples/mnist_demo.py                      # APReLU, 3 epochs
    python examples/mnist_demo.py --activation relu --epochs 1
    python examples/mnist_demo.py --fast               # a 1-minute smoke run

MNIST loads offline (see mnist_data.py). The figures go to --out
(examples/output/ by default).
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quiet_start  # noqa: E402

quiet_start.import_tensorflow()

import matplotlib.pyplot as plt  # noqa: E402
import mnist_cnn  # noqa: E402
import mnist_data  # noqa: E402
import numpy as np  # noqa: E402

import keras_aprelu  # noqa: E402, F401
from keras_aprelu import callbacks  # noqa: E402
from keras_aprelu import viz  # noqa: E402
from keras_aprelu.viz import plotting  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", default="aprelu", choices=mnist_cnn.ACTIVATIONS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "output"))
    parser.add_argument(
        "--log-dir",
        help="log dead units, slopes and attribution maps to TensorBoard here",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="2,000 training and 500 test images, 1 epoch (a smoke test)",
    )
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: --epochs={args.epochs}")
    return args


def save(figure, out, name):
    path = out / name
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def main(argv=None):
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data()
    epochs = args.epochs
    if args.fast:
        x_train, y_train = x_train[:2000], y_train[:2000]
        x_test, y_test = x_test[:500], y_test[:500]
        epochs = 1
    x_train, x_test = mnist_cnn.prepare(x_train), mnist_cnn.prepare(x_test)

    model = mnist_cnn.compile_cnn(mnist_cnn.build_cnn(args.activation, seed=args.seed))
    print(f"{model.name}: {model.count_params():,} parameters")
    watch = []
    if args.log_dir:
        # Dead units and slopes on 1,000 test images, and the maps of one
        # digit per class, after every epoch.
        picks = [int(np.flatnonzero(y_test == d)[0]) for d in range(10)]
        watch = [
            callbacks.ActivationMonitor(x_test[:1000], log_dir=args.log_dir),
            callbacks.AttributionMaps(
                x_test[picks],
                args.log_dir,
                methods=("saliency", "integrated_gradients", "hires_cam"),
                layer="act2",
            ),
        ]
    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=epochs,
        validation_split=0.1,
        verbose=1 if sys.stdout.isatty() else 2,
        callbacks=watch,
    )
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    print(f"test accuracy: {accuracy:.4f} (trained in {seconds:.0f} s)")
    model_path = out / f"mnist_{args.activation}.keras"
    model.save(model_path)
    print(f"model saved to {model_path}")
    if args.log_dir:
        print(f"TensorBoard logs in {args.log_dir}; view them with:")
        print(f"  tensorboard --logdir {args.log_dir}")

    written = []
    # One example of each digit.
    picks = np.array([np.flatnonzero(y_test == d)[0] for d in range(10)])
    images, labels = x_test[picks], y_test[picks]
    written.append(save(plotting.plot_filters(model, "conv1"), out, "filters.png"))
    written.append(
        save(
            plotting.plot_feature_maps(model, images[0], "act1"),
            out,
            "feature_maps.png",
        )
    )
    maps = {
        "Saliency": viz.saliency(model, images),
        "Guided": viz.saliency(model, images, modifier="guided"),
        "SmoothGrad": viz.saliency(model, images, smooth_samples=16),
        "Integ. grad.": viz.integrated_gradients(model, images),
        "Occlusion": viz.occlusion(model, images, patch_size=4, stride=2),
        # Not Grad-CAM or Grad-CAM++: on APReLU models their channel
        # weights are unreliable (README, "Which map to trust").
        "HiResCAM": viz.hires_cam(model, images, layer="act2"),
        "Layer-CAM": viz.layer_cam(model, images, layer="act2"),
    }
    figure = plotting.plot_heatmaps(images, maps, row_titles=labels, max_rows=10)
    written.append(save(figure, out, "attributions.png"))
    figure = plotting.plot_activation_maximization(
        viz.activation_maximization(model, "classifier", list(range(10)), steps=128),
        titles=[str(d) for d in range(10)],
    )
    written.append(save(figure, out, "activation_maximization.png"))
    sample = x_test[:1000]
    dead = viz.dead_units(model, sample)
    print("dead units:", ", ".join(f"{k} {100 * v:.1f}%" for k, v in dead.items()))
    written.append(save(plotting.plot_dead_units(dead), out, "dead_units.png"))
    if args.activation == "aprelu":
        slopes = viz.aprelu_slopes(model, sample)
        figure = plotting.plot_aprelu_slopes(slopes, y_test[:1000], max_channels=32)
        written.append(save(figure, out, "aprelu_slopes.png"))
    written.append(save(plotting.plot_activation_functions(), out, "activations.png"))
    print("figures written:")
    for path in written:
        print(f"  {path}")
    return accuracy


if __name__ == "__main__":
    main()
