"""Grad-CAM, Grad-CAM++ and guided Grad-CAM.

Each CAM is its weighting rule (see `_cam`); adding one is a rule and a
public function that passes it to `_cam.cam`.
"""

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _cam
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import saliency as _saliency

__all__ = [
    "grad_cam",
    "grad_cam_plus_plus",
    "guided_grad_cam",
    "hires_cam",
    "layer_cam",
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


_COMMON = """
    Args:
        model, inputs, target, logits, normalize, batch_size, progress: As
            in `keras_aprelu.viz.saliency`.
        layer: A layer name, a path such as `"backbone/conv5"` into a nested
            model, or a Layer. Defaults to the last feature map before the
            pooling or flattening that leads to the head, found by running
            the model (on ResNet50, `conv5_block3_out`); the choice is
            logged at INFO level by the `keras_aprelu.viz` logger.

    Returns:
        float32 array of shape `(batch, *spatial)` of the inputs. For a
        model with several inputs, a list (or dict) with the map upsampled
        to each input that has the layer's number of spatial axes, and
        None for the others.
"""


def grad_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
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
    {common}
    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        grad_cam_rule,
        layer=layer,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


def grad_cam_plus_plus(
    model,
    inputs,
    target=None,
    *,
    layer=None,
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
    {common}
    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        grad_cam_plus_plus_rule,
        layer=layer,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


def hires_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
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
    {common}
    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        hires_cam_rule,
        layer=layer,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


def layer_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
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
    {common}
    Cost: one forward and one (partial) backward pass per input.
    """
    return _cam.cam(
        model,
        inputs,
        target,
        layer_cam_rule,
        layer=layer,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


def guided_grad_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
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
    {common}
    Cost: two forward and two backward passes per input.
    """
    normalize = _args.check_bool(normalize, "normalize")
    common = {"logits": logits, "normalize": False, "batch_size": batch_size}
    cams = grad_cam(model, inputs, target, layer=layer, progress=progress, **common)
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


for _function in (grad_cam, grad_cam_plus_plus, guided_grad_cam, hires_cam, layer_cam):
    if _function.__doc__:  # None under python -OO
        _function.__doc__ = _function.__doc__.replace("{common}", _COMMON)
