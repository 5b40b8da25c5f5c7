"""What every class activation map (CAM) shares.

A CAM variant is only its weighting rule: a function
`rule(features, grads) -> maps` from the layer's activations and the
gradient of the score with respect to them, both float32, channels last,
shape (batch, *spatial, channels), to maps of shape (batch, *spatial).
Finding the layer, recording it, taking the gradient, upsampling the maps to
the inputs and the output contract live here, once.
"""

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _scores
from keras_aprelu.viz import _tf


def resolve_layer(model, data, layer):
    """(path, layer) of the CAM layer: `layer`, or the default one."""
    if layer is None:
        ranks = {
            len(data.layout.spatial_axes(i)) for i in range(len(data.layout.ranks))
        }
        return _layers.default_cam_layer(model, ranks)
    return _layers.find_layer(model, layer)


def _cam_function(model, layout, found, path, rule, rule_key, logits, targets):
    score_fn = targets.score_fn

    def build(model):
        def fn(xs, targets):
            store = {}
            with _scores.logits_of(model, logits):
                with _tf.GradientTape() as tape:
                    with _layers.recording([found], store, on_output=tape.watch):
                        outputs = model(layout.to_model(xs), training=False)
                    scores = _scores.score(outputs, targets, score_fn)
            if 0 not in store:
                raise ValueError(
                    f"`layer` {path!r} was not called when the model ran, so "
                    f"it has no activations to weigh. Received: layer={path!r}"
                )
            features = store[0]
            if not hasattr(features, "shape") or len(features.shape) < 3:
                raise ValueError(
                    "`layer` must have one feature map as output, shape "
                    "(batch, *spatial, channels), for a CAM. Received: "
                    f"layer={path!r} with output "
                    f"{getattr(features, 'shape', type(features).__name__)}"
                )
            grads = keras.ops.cast(tape.gradient(scores, features), "float32")
            features = keras.ops.cast(features, "float32")
            if layout.channels_first:
                order = [0, *range(2, len(features.shape)), 1]
                features = keras.ops.transpose(features, order)
                grads = keras.ops.transpose(grads, order)
            return rule(features, grads)

        return fn

    key = ("cam", layout, id(found), rule_key, logits, targets.key)
    return _tf.compiled(model, key, build)


def cam(model, inputs, target, rule, *, layer, logits, normalize, batch_size, progress):
    """The maps of the CAM `rule`, upsampled to every input they fit.

    Returns the maps in the structure of the inputs: for each input whose
    number of spatial axes is the layer's, the map upsampled to its spatial
    size; None for any other input (a model with an image and a vector).
    """
    logits = _args.check_bool(logits, "logits")
    normalize = _args.check_bool(normalize, "normalize")
    progress = _args.check_bool(progress, "progress")
    batch_size = _args.check_positive_int(batch_size, "batch_size")
    data = _inputs.read(model, inputs)
    targets = _inputs.Targets(target, data.count, _inputs.num_classes(model))
    path, found = resolve_layer(model, data, layer)
    fn = _cam_function(
        model, data.layout, found, path, rule, rule.__name__, logits, targets
    )
    sizes = []

    def compute(start, xs):
        if not sizes:
            sizes.extend(
                data.layout.spatial_shape(i, x.shape) for i, x in enumerate(xs)
            )
        return [fn(xs, targets.slice(start, start + len(xs[0])))]

    (maps,) = _inputs.collect(data, batch_size, compute, progress)
    targets.check_count(data.count)
    per_input = [
        _inputs.finish(upsample(maps, size), normalize)
        if len(size) == maps.ndim - 1
        else None
        for size in sizes
    ]
    return data.layout.pack(per_input)


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
