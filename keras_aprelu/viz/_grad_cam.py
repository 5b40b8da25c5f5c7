"""The CAM family: Grad-CAM, Grad-CAM++, HiResCAM, Layer-CAM, Score-CAM and
guided Grad-CAM.

Each CAM is its weighting (see `_cam`); adding one is a rule and a public
function that passes it to `_cam.cam`.
"""

import dataclasses

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _cam
from keras_aprelu.viz import _docs
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _masked
from keras_aprelu.viz import _saliency
from keras_aprelu.viz import _scores

__all__ = [
    "grad_cam",
    "grad_cam_plus_plus",
    "guided_grad_cam",
    "hires_cam",
    "layer_cam",
    "score_cam",
]


def _spatial_axes(features):
    return list(range(1, len(features.shape) - 1))


def grad_cam_rule(features, grads):
    """relu(sum_k mean_ij(g_k) * A_k)."""
    weights = keras.ops.mean(grads, axis=_spatial_axes(features), keepdims=True)
    return keras.ops.relu(keras.ops.sum(features * weights, axis=-1))


def grad_cam_plus_plus_rule(features, grads):
    """Chattopadhyay et al. (2018), eq. 19, with the exponential of the
    score, as in their code and pytorch-grad-cam."""
    spatial = _spatial_axes(features)
    g2, g3 = grads**2, grads**3
    total = keras.ops.sum(features, axis=spatial, keepdims=True)
    denominator = 2 * g2 + total * g3
    safe = keras.ops.where(denominator != 0, denominator, 1.0)
    alpha = keras.ops.where((grads != 0) & (denominator != 0), g2 / safe, 0.0)
    weights = keras.ops.sum(alpha * keras.ops.relu(grads), axis=spatial, keepdims=True)
    return keras.ops.relu(keras.ops.sum(features * weights, axis=-1))


def hires_cam_rule(features, grads):
    """relu(sum_k g_k * A_k), element by element."""
    return keras.ops.relu(keras.ops.sum(features * grads, axis=-1))


def layer_cam_rule(features, grads):
    """relu(sum_k relu(g_k) * A_k), element by element."""
    return keras.ops.relu(keras.ops.sum(features * keras.ops.relu(grads), axis=-1))


def score_weighting(weights):
    """Score-CAM's weighting: each channel's activation, upsampled to the
    input and min-max scaled to [0, 1], masks the input; the masked inputs'
    scores weigh the channels. One forward pass per input and channel."""

    def maps_of(run, feature_map):
        model, layout = run.model, run.layout
        if layout.kind != "array":
            raise ValueError(
                "`inputs` must be one array: Score-CAM masks a single input "
                f"with the layer's maps. Received: inputs with "
                f"{len(layout.keys)} entries"
            )
        if weights == "probability" and run.targets.score_fn is not None:
            raise ValueError(
                '`weights="probability"` takes the softmax probability of a '
                "class: `target` must be None, an int or ints. Received: "
                f"target={run.targets.score_fn!r}"
            )
        features = _cam.features_function(run, feature_map)
        # The compiled function must not close over `run`: it holds the
        # model, through its inputs. "probability" takes the softmax of the
        # logits itself.
        score_fn, size = run.targets.score_fn, run.batch_size
        plan = run.plan
        if weights == "probability":
            plan = dataclasses.replace(plan, logits=True)
        softmax = keras.ops.softmax if weights == "probability" else None

        def build(model):
            def fn(xs, acts, lows, highs, fracs, targets):
                spatial = len(acts.shape) - 2

                def mask_of(which, where):
                    # 1 - the channel's activation, upsampled, in [0, 1]:
                    # the input is kept where the activation is high.
                    index = keras.ops.reshape(where, [-1] + [1] * (spatial + 1))
                    a = keras.ops.take(acts, which, axis=0)
                    a = keras.ops.take_along_axis(a, index, axis=-1)[..., 0]
                    for i in range(spatial):
                        shape = [1] * (spatial + 1)
                        shape[1 + i] = -1
                        f = keras.ops.reshape(fracs[i], shape)
                        a = (
                            keras.ops.take(a, lows[i], axis=1 + i) * (1 - f)
                            + keras.ops.take(a, highs[i], axis=1 + i) * f
                        )
                    axes = list(range(1, spatial + 1))
                    low = keras.ops.min(a, axis=axes, keepdims=True)
                    span = keras.ops.max(a, axis=axes, keepdims=True) - low
                    safe = keras.ops.where(span > 0, span, 1.0)
                    return 1 - keras.ops.where(span > 0, (a - low) / safe, 0.0)

                with plan.logits_applied():
                    clean = plan.forward(model, xs)
                    targets = _scores.chosen_targets(clean, targets)
                    scores = _masked.scores(
                        model,
                        plan,
                        0,
                        xs,
                        keras.ops.zeros_like(xs[0]),
                        keras.ops.shape(acts)[-1],
                        mask_of,
                        targets,
                        size=size,
                        score_fn=score_fn,
                        outputs_fn=softmax,
                    )
                if weights == "softmax":
                    scores = keras.ops.softmax(scores, axis=-1)
                shape = [-1] + [1] * spatial + [keras.ops.shape(scores)[-1]]
                cam = keras.ops.sum(acts * keras.ops.reshape(scores, shape), axis=-1)
                return keras.ops.relu(cam)

            return fn

        key = ("score_cam", layout, id(feature_map.layer), feature_map.of_input)
        key += (weights, plan.logits, run.targets.key, run.batch_size)
        fn = _backend.compiled(model, key, build)

        def compute(start, xs):
            acts = _backend.to_numpy(features(xs))
            inner = acts.shape[1:-1]
            outer = layout.spatial_shape(0, xs[0].shape)
            _cam.check_fits_an_input(acts.shape[:-1], [outer], feature_map.path)
            axes = [_cam.interpolation(o, n) for o, n in zip(inner, outer, strict=True)]
            lows, highs, fracs = ([axis[j] for axis in axes] for j in range(3))
            chosen = run.targets.slice(start, start + len(xs[0]))
            return fn(xs, acts, lows, highs, fracs, chosen)

        return compute

    return maps_of


_CAM_ARGS = (
    *_docs.METHOD_ARGS,
    "layer",
    "token_grid",
)
_CAM_NOTES = {"layer": _docs.LAYER_NOTES["cam"]}
_cam_args = _docs.shared_args(*_CAM_ARGS, notes=_CAM_NOTES, returns="cam")


@_cam_args
def grad_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    token_grid=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Grad-CAM (Selvaraju et al., 2017): where a conv layer sees the class.

    With `A` the activations of `layer` (channels last) and `g` the
    gradient of the score with respect to them, the map is
    `relu(sum_k mean_ij(g_k) * A_k)`, upsampled to the input's spatial size
    by linear interpolation.

    It depends on the sign of the features: the channel weights assume
    non-negative features, as after a ReLU. On APReLU's signed features a
    channel with a positive weight but negative activations subtracts where
    it should add.

    Args:

    Returns:

    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        _cam.gradient(grad_cam_rule),
        layer=layer,
        token_grid=token_grid,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


@_cam_args
def grad_cam_plus_plus(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    token_grid=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Grad-CAM++ (Chattopadhyay et al., 2018).

    As `grad_cam`, but each channel's weight is `sum_ij a_ij relu(g_ij)`
    with `a = g^2 / (2 g^2 + sum_ij(A) g^3)`, the closed form for the
    exponential of the score that the authors' code uses (0 where the
    gradient or the denominator is 0). It localizes several instances of a
    class better.

    It depends on the sign of the features: the closed form assumes
    non-negative feature maps, as after a ReLU. On a layer whose outputs can
    be negative (APReLU, PReLU, LeakyReLU, Maxout or a convolution before
    its activation), `sum_ij(A)` can be negative, some weights turn negative
    and a map can vanish altogether: on the demo's APReLU CNN at `act2`,
    the map of one digit is zero everywhere. Prefer occlusion or
    integrated gradients there.

    Args:

    Returns:

    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        _cam.gradient(grad_cam_plus_plus_rule),
        layer=layer,
        token_grid=token_grid,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


@_cam_args
def hires_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    token_grid=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """HiResCAM (Draelos and Carin, 2020): gradient times activation, summed
    over channels, with no pooling of the gradient.

    The map is `relu(sum_k g_k * A_k)`, position by position, upsampled as
    in `grad_cam`. Where the gradient is the same at every position (a
    layer followed by global average pooling and a Dense head), it equals
    Grad-CAM; elsewhere each position keeps its own gradient, so the map is
    the layer's first-order contribution to the score at that position.

    It does not depend on the sign of the features: a negative activation
    with a negative gradient counts as evidence, as it does in the score,
    which makes it the CAM to read on APReLU's mostly negative features.

    Args:

    Returns:

    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        _cam.gradient(hires_cam_rule),
        layer=layer,
        token_grid=token_grid,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


@_cam_args
def layer_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    token_grid=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Layer-CAM (Jiang et al., 2021): positive gradient times activation,
    summed over channels.

    The map is `relu(sum_k relu(g_k) * A_k)`, position by position,
    upsampled as in `grad_cam`. Weighing each position by its own gradient
    makes it usable on early, high-resolution layers, as the paper intends.

    It depends on the sign of the features: it keeps only positive
    gradients and assumes non-negative activations (as after a ReLU), so on
    APReLU's negative features a position with a positive gradient
    subtracts. Prefer `hires_cam` there.

    Args:

    Returns:

    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        _cam.gradient(layer_cam_rule),
        layer=layer,
        token_grid=token_grid,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


@_docs.shared_args(*_CAM_ARGS, notes=_CAM_NOTES)
def score_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    token_grid=None,
    weights="softmax",
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Score-CAM (Wang et al., 2020): each channel weighed by the score of
    the input it masks, with no gradient.

    Each channel `A_k` of `layer` is upsampled to the input (linearly, as
    the maps are) and min-max scaled to [0, 1]; the input times that mask
    is scored, `s_k`, for the class predicted on the clean input. The map is
    `relu(sum_k w_k A_k)`, upsampled as in `grad_cam`, with
    `w = softmax_k(s)` (`weights="softmax"`, pytorch-grad-cam's
    definition) or `w_k` = the softmax probability of
    the class for the masked input (`weights="probability"`, the authors'
    code and tf-keras-vis).

    It uses no gradient, and does not depend on the sign of the features
    through the weights: a channel is weighed by what the input it keeps
    scores. Its map still adds `w_k A_k`, so negative features lower it.

    Only for a model with one input.

    Args:
        weights: `"softmax"` or `"probability"`. Defaults to `"softmax"`.

    Returns:
        float32 array of shape `(batch, *spatial)` of the input.

    Cost: one forward pass per input and channel of the layer, plus two;
    the masked copies run in passes of `batch_size`.
    """
    weights = _args.check_choice(weights, "weights", ("softmax", "probability"))
    return _cam.cam(
        model,
        inputs,
        target,
        score_weighting(weights),
        layer=layer,
        token_grid=token_grid,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


@_cam_args
def guided_grad_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    token_grid=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Guided Grad-CAM (Selvaraju et al., 2017): guided backprop times
    Grad-CAM.

    The guided-backprop gradient (see `saliency`, `modifier="guided"`) is
    multiplied, pixel by pixel, by the upsampled Grad-CAM map, and then
    reduced over channels by the maximum absolute value. It inherits
    Grad-CAM's dependence on the sign of the features.

    Args:

    Returns:

    Cost: two forward and two backward passes per input.
    """
    normalize = _args.check_bool(normalize, "normalize")
    common = {"logits": logits, "normalize": False, "batch_size": batch_size}
    cams = grad_cam(
        model,
        inputs,
        target,
        layer=layer,
        token_grid=token_grid,
        progress=progress,
        **common,
    )
    guided = _saliency.saliency(
        model, inputs, target, modifier="guided", progress=progress, **common
    )
    if isinstance(cams, np.ndarray):
        return _product(guided, cams, normalize)
    keys = cams if isinstance(cams, dict) else range(len(cams))
    out = {k: _product(guided[k], cams[k], normalize) for k in keys}
    return out if isinstance(cams, dict) else [out[k] for k in keys]


def _product(guided, cams, normalize):
    # Both reduce to (batch, *spatial) and |guided * cam| = |guided| * cam.
    if cams is None:
        return None
    return _inputs.finish(guided * cams, normalize)
