"""Command line: a saliency, Grad-CAM or occlusion figure of a saved model.

    python -m keras_aprelu.viz MODEL.keras INPUTS.npy --method grad_cam \
        --target 3 --out fig.png [--maps maps.npy]
"""

import argparse
import sys

import numpy as np

METHODS = (
    "saliency",
    "guided",
    "deconvnet",
    "smoothgrad",
    "integrated_gradients",
    "grad_cam",
    "grad_cam_plus_plus",
    "guided_grad_cam",
    "occlusion",
)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_aprelu.viz",
        description="Draws the maps of one method for a saved Keras model.",
    )
    parser.add_argument("model", help="a .keras file (keras_aprelu layers load)")
    parser.add_argument("inputs", help="a .npy batch, channels last")
    parser.add_argument("--method", choices=METHODS, default="grad_cam")
    parser.add_argument(
        "--target",
        type=int,
        nargs="*",
        default=None,
        help="one class for every input, or one per input; the predicted "
        "class when left out",
    )
    parser.add_argument("--layer", default=None, help="Grad-CAM layer (name or path)")
    parser.add_argument("--patch-size", type=int, default=4, help="occlusion patch")
    parser.add_argument("--stride", type=int, default=None, help="occlusion stride")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--out", default="maps.png", help="the figure (.png, .pdf, ...)"
    )
    parser.add_argument("--maps", default=None, help="also save the raw maps (.npy)")
    parser.add_argument(
        "--no-normalize",
        action="store_true",
        help="keep the raw, signed values instead of scaling to [0, 1]",
    )
    return parser


def compute(model, x, args):
    from keras_aprelu import viz

    target = args.target
    if target is not None:
        target = target[0] if len(target) == 1 else target
    common = {"normalize": not args.no_normalize, "batch_size": args.batch_size}
    method = args.method
    if method in ("saliency", "guided", "deconvnet", "smoothgrad"):
        modifier = None if method in ("saliency", "smoothgrad") else method
        samples = 16 if method == "smoothgrad" else 0
        return viz.saliency(
            model, x, target, modifier=modifier, smooth_samples=samples, **common
        )
    if method == "integrated_gradients":
        return viz.integrated_gradients(model, x, target, **common)
    if method == "occlusion":
        return viz.occlusion(
            model, x, target, patch_size=args.patch_size, stride=args.stride, **common
        )
    function = getattr(viz, method)
    return function(model, x, target, layer=args.layer, **common)


def main(argv=None):
    args = _parser().parse_args(argv)
    import keras

    import keras_aprelu  # noqa: F401  (registers the layers for loading)
    from keras_aprelu.viz import plotting

    model = keras.saving.load_model(args.model)
    x = np.load(args.inputs)
    maps = compute(model, x, args)
    if args.maps:
        np.save(args.maps, maps)
        print(f"maps {maps.shape} saved to {args.maps}")
    figure = plotting.plot_heatmaps(x, {args.method: maps})
    figure.savefig(args.out, dpi=120)
    print(f"figure saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
