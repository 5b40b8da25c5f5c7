"""Inputs, targets, scores, logits, chunking and compiled-function caching.

Every method shares these, so that `model`, `inputs`, `target`, `layer`,
`batch_size` and `normalize` mean the same thing everywhere.
"""

import contextlib
import functools
import numbers
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_aprelu.viz import _layers

# model -> {configuration key -> tf.function}; dies with the model.
_FUNCTIONS = weakref.WeakKeyDictionary()


def compiled(model, key, build):
    """The tf.function for (model, key), built by `build()` on first use."""
    per_model = _FUNCTIONS.setdefault(model, {})
    if key not in per_model:
        # TensorFlow counts retracings per code object, so the closures of
        # several models would look like one function traced again and again
        # and log a misleading warning. A partial is its own key.
        per_model[key] = tf.function(functools.partial(build()), reduce_retracing=True)
    return per_model[key]


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def as_batch(model, inputs):
    """`inputs` as a float32 NumPy batch, checked against the model's input."""
    if isinstance(inputs, (list, tuple, dict)) and not isinstance(inputs, np.ndarray):
        if not (isinstance(inputs, (list, tuple)) and np.ndim(inputs) > 1):
            raise ValueError(
                "`inputs` must be one array, batch first; models with several "
                f"inputs are not supported. Received: inputs={type(inputs).__name__}"
            )
    x = np.asarray(inputs)
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"`inputs` must be numeric. Received: inputs.dtype={x.dtype}")
    x = x.astype("float32", copy=False)
    expected = _input_shape(model)
    if expected is not None:
        fits = len(x.shape) == len(expected) and all(
            want is None or want == got
            for want, got in zip(expected[1:], x.shape[1:], strict=True)
        )
        if not fits:
            shown = "(batch, " + ", ".join(str(d) for d in expected[1:]) + ")"
            raise ValueError(
                f"`inputs` must have shape {shown}, batch first (None: any "
                f"size). Received: inputs.shape={x.shape}"
            )
    if x.shape[0] == 0:
        raise ValueError(f"`inputs` holds no sample. Received: inputs.shape={x.shape}")
    _layers.find_final_layer(model, x[:1])
    return x


def _input_shape(model):
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ValueError(
                "`model` must have a single input; models with several inputs "
                f"are not supported. Received: model.input_shape={shape}"
            )
        shape = shape[0]
    return tuple(shape)


def targets_for(target, batch, num_classes):
    """Resolves `target` to (int32 array of shape (batch,), callable or None).

    -1 in the array means "the predicted class".
    """
    if callable(target):
        return np.full((batch,), -1, np.int32), target
    if target is None:
        return np.full((batch,), -1, np.int32), None
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        values = np.full((batch,), int(target))
    else:
        values = np.asarray(target)
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                "`target` must be None, an int, a sequence of ints (one per "
                f"input) or a callable. Received: target={target!r}"
            )
        if len(values) != batch:
            raise ValueError(
                f"`target` must hold one class per input ({batch}). "
                f"Received: target={target!r} (length {len(values)})"
            )
    if num_classes is not None:
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(
                f"`target` must lie in [0, {num_classes - 1}] for this model's "
                f"{num_classes} outputs. Received: target={target!r}"
            )
    return values.astype(np.int32), None


def num_classes(model):
    try:
        shape = model.output_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, list):
        return None
    return shape[-1] if len(shape) == 2 else None


def score(outputs, targets, score_fn):
    """The per-sample score whose gradient every method takes."""
    if score_fn is not None:
        value = score_fn(outputs)
        if len(value.shape) != 1:
            raise ValueError(
                "A callable `target` must return one score per input, shape "
                f"(batch,). Received: a score of shape {tuple(value.shape)}"
            )
        return tf.cast(value, "float32")
    if isinstance(outputs, (list, tuple, dict)) or len(outputs.shape) != 2:
        raise ValueError(
            "An int or None `target` picks a class of a (batch, classes) "
            "output; for other outputs pass a callable "
            "`target=lambda outputs: ...` returning shape (batch,). Received: "
            "a model output of type/shape "
            f"{getattr(outputs, 'shape', type(outputs).__name__)}"
        )
    predicted = tf.argmax(outputs, axis=-1, output_type=tf.int32)
    chosen = tf.where(targets < 0, predicted, targets)
    return tf.cast(tf.gather(outputs, chosen, axis=1, batch_dims=1), "float32")


_SQUASHERS = {"softmax", "sigmoid"}
LINEAR = {"linear", "identity"}


def function_name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


@contextlib.contextmanager
def logits_of(model, enabled):
    """While active, a final softmax or sigmoid of the model is the identity."""
    last = _layers.final_layer(model) if enabled else None
    if last is None:
        yield
        return
    if isinstance(last, keras.layers.Softmax):
        with _layers.patched(last, "call", lambda inputs, *a, **k: inputs):
            yield
        return
    activation = getattr(last, "activation", None)
    if activation is not None and function_name(activation) in _SQUASHERS:
        with _layers.patched(last, "activation", keras.activations.linear):
            yield
        return
    yield


def normalize_maps(maps):
    """Each map's magnitude divided by its largest, into [0, 1].

    Zero stays at 0, so "no attribution" is the bottom of a colormap. (A
    min-max stretch would paint the zero background of a signed map, such
    as integrated gradients, in the middle of the colormap.) An all-zero
    map stays zero.
    """
    flat = np.abs(maps.reshape(len(maps), -1))
    peak = flat.max(axis=1, keepdims=True)
    out = flat / np.where(peak > 0, peak, 1)
    return out.reshape(maps.shape).astype("float32")


def chunks(n, size, progress=False, label=""):
    """Yields slices of `size` over range(n), with an optional progress bar."""
    bar = keras.utils.Progbar(n, unit_name="sample") if progress else None
    for start in range(0, n, size):
        stop = min(n, start + size)
        yield slice(start, stop)
        if bar is not None:
            bar.update(stop)


def final_squasher(model):
    """The final layer, as a 1-tuple, when it ends in softmax or sigmoid."""
    last = _layers.final_layer(model)
    if last is None:
        return ()
    if isinstance(last, keras.layers.Softmax):
        return (last,)
    if function_name(getattr(last, "activation", None)) in _SQUASHERS:
        return (last,)
    return ()


def feature_axes(rank):
    """The spatial axes of an input of `rank` (channels last).

    A rank-2 input (batch, features) has no channel axis: every feature is a
    position of its own.
    """
    return tuple(range(1, rank - 1)) if rank >= 3 else (1,)


def reduce_channels(values, how):
    """Reduces the channel axis (the last, for rank >= 3) of a batch."""
    if len(values.shape) < 3:
        return tf.abs(values) if how == "max_abs" else values
    if how == "max_abs":
        return tf.reduce_max(tf.abs(values), axis=-1)
    return tf.reduce_sum(values, axis=-1)


def chosen_targets(outputs, targets):
    """`targets`, with -1 replaced by the class predicted in `outputs`."""
    if isinstance(outputs, (list, tuple, dict)) or len(outputs.shape) != 2:
        return targets
    predicted = tf.argmax(outputs, axis=-1, output_type=tf.int32)
    return tf.where(targets < 0, predicted, targets)


def finish(maps, normalize):
    maps = np.asarray(maps, dtype="float32")
    return normalize_maps(maps) if normalize else maps


def check_bool(value, name):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def baseline_for(baseline, x):
    """`baseline` broadcast to the batch `x`, as float32."""
    try:
        base = np.asarray(baseline, dtype="float32")
        return np.ascontiguousarray(np.broadcast_to(base, x.shape))
    except (ValueError, TypeError):
        shape = getattr(baseline, "shape", type(baseline).__name__)
        raise ValueError(
            "`baseline` must be a number, or an array of the shape of one "
            f"input {x.shape[1:]} or of the batch {x.shape}. "
            f"Received: baseline.shape={shape}"
        ) from None
