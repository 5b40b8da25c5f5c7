"""Command line: the maps of one method for a saved model, as a figure.

    python -m keras_aprelu.viz MODEL.keras INPUTS.npy --method grad_cam \
        --target 3 --out fig.png [--maps maps.npy]

Errors are reported in one line, `python -m keras_aprelu.viz: error: ...`,
with exit status 2, as argparse reports a bad option.
"""

import argparse
import inspect
import os
import sys
import zipfile

import numpy as np

# `python -m keras_aprelu.viz` has imported the package already.
from keras_aprelu.viz import _relevance

_CAM = ("layer", "token_grid")
# method -> (function name, fixed keyword arguments, options it takes,
# the name a figure shows)
METHODS = {
    "saliency": ("saliency", {}, (), "Saliency"),
    "guided": ("saliency", {"modifier": "guided"}, (), "Guided backprop"),
    "deconvnet": ("saliency", {"modifier": "deconvnet"}, (), "Deconvnet"),
    "smoothgrad": ("saliency", {}, ("samples", "noise", "seed"), "SmoothGrad"),
    "gradient_x_input": ("gradient_x_input", {}, (), "Gradient x input"),
    "integrated_gradients": (
        "integrated_gradients",
        {},
        ("steps", "baseline"),
        "Integrated gradients",
    ),
    "grad_cam": ("grad_cam", {}, _CAM, "Grad-CAM"),
    "grad_cam_plus_plus": ("grad_cam_plus_plus", {}, _CAM, "Grad-CAM++"),
    "hires_cam": ("hires_cam", {}, _CAM, "HiResCAM"),
    "layer_cam": ("layer_cam", {}, _CAM, "Layer-CAM"),
    "score_cam": ("score_cam", {}, _CAM, "Score-CAM"),
    "guided_grad_cam": ("guided_grad_cam", {}, _CAM, "Guided Grad-CAM"),
    "occlusion": ("occlusion", {}, ("patch_size", "stride", "baseline"), "Occlusion"),
    "lrp": ("lrp", {}, ("composite", "epsilon", "gamma", "low", "high"), "LRP"),
    "deeplift": ("deeplift", {}, ("baseline",), "DeepLIFT"),
    "attention_rollout": (
        "attention_rollout",
        {},
        ("head_fusion", "discard_ratio", "token_grid"),
        "Attention rollout",
    ),
    "gradient_rollout": ("gradient_rollout", {}, ("token_grid",), "Gradient rollout"),
}
_COMPOSITES = tuple(_relevance.COMPOSITES)
# Options that count something: at least 1.
_COUNTS = ("samples", "steps", "patch_size", "stride", "batch_size", "max_rows")
# option -> the keyword argument of the viz function it sets
_KEYWORDS = {
    "samples": "smooth_samples",
    "noise": "smooth_noise",
    "seed": "seed",
    "steps": "steps",
    "baseline": "baseline",
    "layer": "layer",
    "patch_size": "patch_size",
    "stride": "stride",
    "token_grid": "token_grid",
    "head_fusion": "head_fusion",
    "discard_ratio": "discard_ratio",
    "composite": "composite",
    "epsilon": "epsilon",
    "gamma": "gamma",
    "low": "low",
    "high": "high",
}


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_aprelu.viz",
        description="Draws the maps of one method for a saved Keras model.",
    )
    parser.add_argument("model", help="a .keras file (keras_aprelu layers load)")
    parser.add_argument(
        "inputs", help="a .npy file holding one batch, as the model takes it"
    )
    parser.add_argument(
        "--method",
        choices=list(METHODS),
        default="grad_cam",
        metavar="METHOD",
        help="the viz method (default: grad_cam); one of " + ", ".join(METHODS),
    )
    parser.add_argument(
        "--target",
        type=int,
        nargs="+",
        default=None,
        help="one class for every input, or one per input; the predicted "
        "class when left out",
    )
    parser.add_argument(
        "--layer", help="CAM methods: the layer (name or path); default: found"
    )
    parser.add_argument(
        "--samples", type=int, help="smoothgrad: noisy copies per input (16)"
    )
    parser.add_argument(
        "--noise", type=float, help="smoothgrad: noise / value range (0.2)"
    )
    parser.add_argument("--seed", type=int, help="smoothgrad: seed of the noise (0)")
    parser.add_argument(
        "--steps", type=int, help="integrated_gradients: path intervals (32)"
    )
    parser.add_argument(
        "--baseline",
        type=float,
        help="integrated_gradients, occlusion, deeplift: the baseline value (0.0)",
    )
    parser.add_argument(
        "--composite",
        choices=list(_COMPOSITES),
        metavar="COMPOSITE",
        help="lrp: zennit's composite of rules (epsilon_plus_flat); one of "
        + ", ".join(_COMPOSITES),
    )
    parser.add_argument(
        "--epsilon", type=float, help="lrp: the epsilon rule's stabilizer (1e-6)"
    )
    parser.add_argument(
        "--gamma", type=float, help="lrp: the gamma rule's weight (0.25)"
    )
    parser.add_argument(
        "--low",
        type=float,
        help="lrp, epsilon_gamma_box: the lowest input value (each input's min)",
    )
    parser.add_argument(
        "--high",
        type=float,
        help="lrp, epsilon_gamma_box: the highest input value (each input's max)",
    )
    parser.add_argument(
        "--patch-size", type=int, nargs="+", help="occlusion: patch size (4)"
    )
    parser.add_argument(
        "--stride", type=int, nargs="+", help="occlusion: stride (patch size)"
    )
    parser.add_argument(
        "--token-grid",
        type=int,
        nargs=2,
        metavar=("ROWS", "COLS"),
        help="CAMs and rollouts on a transformer: the grid of patch tokens "
        "(default: inferred from the token count)",
    )
    parser.add_argument(
        "--head-fusion",
        choices=["mean", "max", "min"],
        help="attention_rollout: how the heads are fused (mean)",
    )
    parser.add_argument(
        "--discard-ratio",
        type=float,
        help="attention_rollout: the fraction of the smallest attention "
        "entries dropped (0)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--max-rows", type=int, default=8, help="inputs drawn in the figure (8)"
    )
    parser.add_argument(
        "--out", default="maps.png", help="the figure (.png, .pdf, ...)"
    )
    parser.add_argument(
        "--maps", default=None, help="also save the raw maps (.npy) to this file"
    )
    parser.add_argument(
        "--colorbar",
        action="store_true",
        help="draw a colour bar beside every map (signed maps: for and against)",
    )
    parser.add_argument(
        "--no-normalize",
        action="store_true",
        help="keep the raw, signed values instead of scaling to [0, 1]",
    )
    return parser


def keywords(args):
    """The viz function and its keyword arguments for the parsed `args`."""
    function, fixed, accepted, _ = METHODS[args.method]
    for option in _COUNTS:
        value = getattr(args, option)
        values = value if isinstance(value, list) else [value]
        if value is not None and any(v < 1 for v in values):
            flag = "--" + option.replace("_", "-")
            raise ValueError(
                f"{flag} must be at least 1. Received: {flag} {_shown(value)}"
            )
    kwargs = dict(fixed)
    for option, keyword in _KEYWORDS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if option not in accepted:
            flag = "--" + option.replace("_", "-")
            raise ValueError(
                f"{flag} does not apply to --method {args.method}; it applies to "
                + ", ".join(
                    m for m, (_, _, opts, _) in METHODS.items() if option in opts
                )
                + f". Received: {flag} {_shown(value)}"
            )
        if isinstance(value, list):
            value = value[0] if len(value) == 1 else tuple(value)
        kwargs[keyword] = value
    if args.method == "smoothgrad":
        kwargs.setdefault("smooth_samples", 16)
    return function, kwargs


def _shown(value):
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def compute(model, x, args):
    from keras_aprelu import viz

    function, kwargs = keywords(args)
    if takes_target(args.method):
        target = args.target
        if target is not None:
            target = target[0] if len(target) == 1 else target
        kwargs["target"] = target
    return getattr(viz, function)(
        model,
        x,
        normalize=not args.no_normalize,
        batch_size=args.batch_size,
        **kwargs,
    )


def takes_target(method):
    """Whether the method explains one class (attention rollout does not)."""
    from keras_aprelu import viz

    function = getattr(viz, METHODS[method][0])
    return "target" in inspect.signature(function).parameters


def load_inputs(path):
    """The batch in a .npy file; anything else is refused with the reason."""
    if not os.path.isfile(path):
        raise ValueError(f"`inputs` must be an existing .npy file. Received: {path}")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(
            f"`inputs` must be a .npy file holding one array ({error}). "
            f"Received: {path}"
        ) from None
    if not isinstance(x, np.ndarray):  # a zip: an .npz (or .keras) archive
        count = len(x.files)
        x.close()
        raise ValueError(
            "`inputs` must be a .npy file holding one array, not an .npz "
            f"archive of {count}: save one with np.save. Received: {path}"
        )
    return x


def _with_suffix(path, suffix):
    return path if path.endswith(suffix) else path + suffix


def _figure_path(path):
    """Where matplotlib writes `path`: with ".png" added when it has no
    extension."""
    return path if os.path.splitext(path)[1] else path + ".png"


def _check_folder(path, flag):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(
            f"{flag} must be a file in an existing folder; {folder} does not "
            f"exist. Received: {flag} {path}"
        )


# The viz functions' other arguments that a flag sets, option -> keyword.
_OTHER_FLAGS = {"target": "target", "batch_size": "batch_size"}


def _as_flags(message):
    """The API's argument names in `message`, as the CLI's flags."""
    for option, keyword in [*_KEYWORDS.items(), *_OTHER_FLAGS.items()]:
        flag = "--" + option.replace("_", "-")
        message = message.replace(f"`{keyword}`", flag)
        message = message.replace(f"Received: {keyword}=", f"Received: {flag} ")
    return message


def run(args):
    import keras

    import keras_aprelu  # noqa: F401  (registers the layers for loading)
    from keras_aprelu.viz import plotting

    keywords(args)  # option errors first, before the slow loading
    if args.target is not None and not takes_target(args.method):
        raise ValueError(
            f"--target does not apply to --method {args.method}: its map "
            f"explains no class. Received: --target {_shown(args.target)}"
        )
    _check_folder(args.out, "--out")
    if args.maps:
        _check_folder(args.maps, "--maps")
    if not os.path.isfile(args.model):
        raise ValueError(
            f"`model` must be an existing .keras file. Received: {args.model}"
        )
    if not zipfile.is_zipfile(args.model):
        raise ValueError(
            "`model` must be a .keras file, a zip archive as model.save "
            f"writes it; this file is not one. Received: {args.model}"
        )
    try:
        model = keras.saving.load_model(args.model)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        text = str(error).strip().strip('"')
        first = text.splitlines()[0] if text else type(error).__name__
        raise ValueError(
            f"`model` could not be loaded as a Keras model ({first}). "
            f"Received: {args.model}"
        ) from None
    x = load_inputs(args.inputs)
    maps = compute(model, x, args)
    messages = []
    if args.maps:
        path = _with_suffix(args.maps, ".npy")  # what np.save writes
        np.save(path, maps)
        messages.append(f"maps {maps.shape} saved to {path}")
    rows = min(len(x), args.max_rows)
    title = METHODS[args.method][3]
    figure = plotting.plot_heatmaps(
        x,
        {title: maps},
        row_titles=_classes(model, x, args.target, args.method),
        max_rows=rows,
        colorbar=args.colorbar,
    )
    path = _figure_path(args.out)
    figure.savefig(path, dpi=120)
    shown = f" (the first {rows} of {len(x)} inputs)" if rows < len(x) else ""
    messages.append(f"figure saved to {path}{shown}")
    return messages


def _classes(model, x, target, method):
    """The row titles: the class each input's map explains ("class 3"), or
    None when the model's output is not a (batch, classes) array."""
    if not takes_target(method):
        return None
    if target is not None:
        classes = target * len(x) if len(target) == 1 else target
    else:
        outputs = model.predict(x, verbose=0)
        if not isinstance(outputs, np.ndarray) or outputs.ndim != 2:
            return None
        classes = np.argmax(outputs, axis=-1)
    return [f"class {int(c)}" for c in classes]


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        messages = run(args)
    except (ValueError, TypeError, ImportError) as error:
        message = _as_flags(" ".join(str(error).split()))
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    for message in messages:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
