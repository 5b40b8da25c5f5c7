"""Grad-CAM, Grad-CAM++ and guided Grad-CAM."""

import numpy as np
import tensorflow as tf

from keras_aprelu.layers import APReLU
from keras_aprelu.layers import Maxout
from keras_aprelu.layers import PReLU
from keras_aprelu.layers import RReLU
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _targets
from keras_aprelu.viz import saliency as _saliency

__all__ = ["grad_cam", "grad_cam_plus_plus", "guided_grad_cam"]

_OUR_ACTIVATIONS = (APReLU, PReLU, RReLU, Maxout)


def _resolve_layer(model, layer, verbose):
    if layer is None:
        path, found = _layers.default_spatial_layer(model, _OUR_ACTIVATIONS)
        if verbose:
            print(f"Grad-CAM uses layer {path!r} ({type(found).__name__})")
        return path, found
    return _layers.find_layer(model, layer)


def _channels_first(layer):
    if getattr(layer, "data_format", None) == "channels_first":
        return True
    return isinstance(layer, _OUR_ACTIVATIONS) and getattr(layer, "axis", -1) == 1


def _cam_function(model, layer, path, plus_plus, logits, score_fn):
    channels_first = _channels_first(layer)

    def build():
        def fn(x, targets):
            store = {}
            with _targets.logits_of(model, logits):
                with tf.GradientTape() as tape:
                    with _layers.recording([layer], store, watch=tape):
                        outputs = model(x, training=False)
                    scores = _targets.score(outputs, targets, score_fn)
            if 0 not in store:
                raise ValueError(
                    f"`layer` {path!r} was not called when the model ran, so "
                    f"it has no activations to weigh. Received: layer={path!r}"
                )
            features = store[0]
            if len(features.shape) < 3:
                raise ValueError(
                    "`layer` must have a spatial output (batch, *spatial, "
                    f"channels) for Grad-CAM. Received: layer={path!r} with "
                    f"output shape {tuple(features.shape)}"
                )
            grads = tf.cast(tape.gradient(scores, features), "float32")
            features = tf.cast(features, "float32")
            if channels_first:
                order = [0, *range(2, features.shape.rank), 1]
                features = tf.transpose(features, order)
                grads = tf.transpose(grads, order)
            spatial = list(range(1, features.shape.rank - 1))
            if plus_plus:
                # Chattopadhyay et al. (2018), eq. 19, with the exponential
                # of the score, as in their code and pytorch-grad-cam.
                g2, g3 = grads**2, grads**3
                total = tf.reduce_sum(features, axis=spatial, keepdims=True)
                denominator = 2 * g2 + total * g3
                alpha = tf.math.divide_no_nan(g2, denominator)
                alpha = tf.where(grads != 0, alpha, 0.0)
                weights = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=spatial)
            else:
                weights = tf.reduce_mean(grads, axis=spatial)
            shape = [-1] + [1] * len(spatial) + [weights.shape[-1]]
            cam = tf.reduce_sum(features * tf.reshape(weights, shape), axis=-1)
            return tf.nn.relu(cam)

        return fn

    key = ("cam", id(layer), plus_plus, logits, score_fn)
    return _targets.compiled(model, key, build)


def _cams(
    model,
    inputs,
    target,
    layer,
    plus_plus,
    logits,
    normalize,
    batch_size,
    verbose,
    progress,
):
    _layers.check_model(model)
    logits = _targets.check_bool(logits, "logits")
    batch_size = _targets.check_positive_int(batch_size, "batch_size")
    x = _targets.as_batch(model, inputs)
    targets, score_fn = _targets.targets_for(
        target, len(x), _targets.num_classes(model)
    )
    path, found = _resolve_layer(model, layer, verbose)
    fn = _cam_function(model, found, path, plus_plus, logits, score_fn)
    cams = np.concatenate(
        [
            fn(x[part], targets[part])
            for part in _targets.chunks(len(x), batch_size, progress)
        ]
    )
    cams = upsample(cams, _targets_spatial(x))
    return _targets.finish(cams, normalize)


def _targets_spatial(x):
    return tuple(x.shape[a] for a in _targets.feature_axes(x.ndim))


def upsample(maps, size):
    """Resizes `(batch, *spatial)` maps to `size` by (multi)linear
    interpolation with half-pixel centres, as `tf.image.resize` does."""
    maps = np.asarray(maps, dtype="float32")
    if maps.ndim - 1 != len(size):
        raise ValueError(
            f"The layer's maps have {maps.ndim - 1} spatial axes but the "
            f"inputs have {len(size)}. Received: maps.shape={maps.shape}, "
            f"size={tuple(size)}"
        )
    for axis, new in enumerate(size, start=1):
        old = maps.shape[axis]
        if old == new:
            continue
        centre = (np.arange(new) + 0.5) * (old / new) - 0.5
        centre = np.clip(centre, 0, old - 1)
        low = np.floor(centre).astype(int)
        high = np.minimum(low + 1, old - 1)
        frac = (centre - low).astype("float32")
        shape = [1] * maps.ndim
        shape[axis] = new
        frac = frac.reshape(shape)
        maps = (
            np.take(maps, low, axis=axis) * (1 - frac)
            + np.take(maps, high, axis=axis) * frac
        )
    return maps


def grad_cam(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    logits=True,
    normalize=True,
    batch_size=64,
    verbose=True,
    progress=False,
):
    """Grad-CAM (Selvaraju et al., 2017): where a conv layer sees the class.

    With `A` the activations of `layer` (channels last) and `g` the
    gradient of the score with respect to them, the map is
    `relu(sum_k mean_ij(g_k) * A_k)`, upsampled to the input's spatial size
    by linear interpolation.

    Args:
        model, inputs, target, logits, normalize, batch_size, progress: As
            in `saliency`.
        layer: A layer name, a path such as `"backbone/conv5"` into a nested
            model, or a Layer. Defaults to the last layer with a spatial
            output: Conv, SeparableConv, DepthwiseConv, Conv*Transpose,
            pooling, or a keras_aprelu activation on a feature map.
        verbose: Print the layer chosen by default. Defaults to `True`.

    Returns:
        float32 array of shape `(batch, *spatial)` of the inputs.

    Cost: one forward and one (partial) backward pass per input.
    """
    return _cams(
        model,
        inputs,
        target,
        layer,
        False,
        logits,
        normalize,
        batch_size,
        verbose,
        progress,
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
    verbose=True,
    progress=False,
):
    """Grad-CAM++ (Chattopadhyay et al., 2018).

    As `grad_cam`, but each channel's weight is `sum_ij a_ij relu(g_ij)`
    with `a = g^2 / (2 g^2 + sum_ij(A) g^3)`, the closed form for the
    exponential of the score that the authors' code uses (0 where the
    gradient is 0). It localizes several instances of a class better.

    The closed form assumes non-negative feature maps, as after a ReLU. On a
    layer whose outputs can be negative (APReLU, PReLU, LeakyReLU, Maxout or
    a convolution before its activation), `sum_ij(A)` can be negative, some
    weights turn negative and a map can vanish altogether: on the demo's
    APReLU CNN at `act2`, the map of one digit is zero everywhere. Prefer
    `grad_cam`, occlusion or integrated gradients there.

    Args and returns: as `grad_cam`.
    """
    return _cams(
        model,
        inputs,
        target,
        layer,
        True,
        logits,
        normalize,
        batch_size,
        verbose,
        progress,
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
    verbose=True,
    progress=False,
):
    """Guided Grad-CAM (Selvaraju et al., 2017): guided backprop times
    Grad-CAM.

    The guided-backprop gradient (see `saliency`, `modifier="guided"`) is
    multiplied, pixel by pixel, by the upsampled Grad-CAM map, and then
    reduced over channels by the maximum absolute value.

    Args and returns: as `grad_cam`.

    Cost: two forward and two backward passes per input.
    """
    cams = grad_cam(
        model,
        inputs,
        target,
        layer=layer,
        logits=logits,
        normalize=False,
        batch_size=batch_size,
        verbose=verbose,
        progress=progress,
    )
    guided = _saliency.saliency(
        model,
        inputs,
        target,
        modifier="guided",
        logits=logits,
        normalize=False,
        batch_size=batch_size,
        progress=progress,
    )
    # Both reduce to (batch, *spatial) and |guided * cam| = |guided| * cam.
    return _targets.finish(guided * cams, normalize)
