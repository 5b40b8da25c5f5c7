"""What a layer has learned: its kernels, its feature maps, and the inputs
that excite it most."""

import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_aprelu.viz import _layers
from keras_aprelu.viz import _targets

__all__ = ["activation_maximization", "feature_maps", "filters"]

_KERNEL_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)


def _conv_layer(model, layer):
    if layer is None:
        for path, found in _layers.walk(model):
            if isinstance(found, _KERNEL_TYPES):
                return path, found
        raise ValueError(
            "`model` has no convolution layer whose kernels could be drawn. "
            f"Received: model={model.name!r}"
        )
    path, found = _layers.find_layer(model, layer)
    if not isinstance(found, _KERNEL_TYPES):
        raise ValueError(
            "`layer` must be a convolution layer (Conv, DepthwiseConv, "
            f"SeparableConv or Conv*Transpose). Received: layer={path!r} "
            f"({type(found).__name__})"
        )
    return path, found


def filters(model, layer=None):
    """The kernels of a convolution layer, one per output filter.

    Args:
        model: A built Keras 3 model.
        layer: A conv layer (name, path or Layer). Defaults to the first
            convolution layer of the model.

    Returns:
        float32 array of shape `(filters, *kernel_size, input_channels)`: the
        kernel with its last (filter) axis moved first. Depthwise layers
        give `(channels * multiplier, *kernel_size, 1)`, separable layers
        their depthwise kernels, transposed convolutions
        `(input_channels, *kernel_size, filters)`.
    """
    _layers.check_model(model)
    _, found = _conv_layer(model, layer)
    separable = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
    kernel = found.depthwise_kernel if isinstance(found, separable) else found.kernel
    kernel = np.asarray(keras.ops.convert_to_numpy(kernel), "float32")
    if isinstance(
        found,
        (
            keras.layers.DepthwiseConv1D,
            keras.layers.DepthwiseConv2D,
            keras.layers.SeparableConv1D,
            keras.layers.SeparableConv2D,
        ),
    ):
        kernel = kernel.reshape(*kernel.shape[:-2], 1, -1)
    return np.moveaxis(kernel, -1, 0).copy()


def _feature_function(model, layer, path):
    def build():
        def fn(x):
            store = {}
            with _layers.recording([layer], store):
                model(x, training=False)
            if 0 not in store:
                raise ValueError(
                    f"`layer` {path!r} was not called when the model ran. "
                    f"Received: layer={path!r}"
                )
            return tf.cast(store[0], "float32")

        return fn

    return _targets.compiled(model, ("features", id(layer)), build)


def feature_maps(model, inputs, layer, *, batch_size=64):
    """The outputs of `layer` for a batch.

    Args:
        model: A built Keras 3 model.
        inputs: A batch, channels last.
        layer: A layer name, path or Layer.
        batch_size: Samples per pass. Defaults to 64.

    Returns:
        float32 array, the layer's output, shape `(batch, *spatial,
        channels)` for a conv layer.

    Cost: one forward pass per input.
    """
    _layers.check_model(model)
    batch_size = _targets.check_positive_int(batch_size, "batch_size")
    x = _targets.as_batch(model, inputs)
    path, found = _layers.find_layer(model, layer)
    fn = _feature_function(model, found, path)
    return np.concatenate(
        [np.asarray(fn(x[part])) for part in _targets.chunks(len(x), batch_size)]
    )


def _max_function(model, layer, path, logits, steps, jitter, l2, tv, rate, low, high):
    def build():
        def objective(x, index):
            store = {}
            with _targets.logits_of(model, logits):
                with _layers.recording([layer], store):
                    model(x, training=False)
            out = tf.cast(store[0], "float32")
            if out.shape.rank > 2:
                out = tf.reduce_mean(out, axis=list(range(1, out.shape.rank - 1)))
            return tf.gather(out, index, axis=1, batch_dims=1)

        def fn(x, index, seed):
            spatial = x.shape.rank - 2

            def step(i, x):
                shifts = tf.random.stateless_uniform(
                    [max(spatial, 1)],
                    tf.stack([seed, i]),
                    -jitter,
                    jitter + 1,
                    dtype=tf.int32,
                )
                axes = list(range(1, 1 + spatial))
                moved = tf.roll(x, shifts[: len(axes)], axes) if axes else x
                with tf.GradientTape() as tape:
                    tape.watch(moved)
                    value = objective(moved, index)
                    loss = tf.reduce_sum(value)
                    penalty = l2 * tf.reduce_mean(moved**2)
                    if tv and spatial:
                        penalty += tv * sum(
                            tf.reduce_sum(
                                tf.abs(tf.experimental.numpy.diff(moved, axis=a))
                            )
                            for a in axes
                        )
                    total = loss - penalty
                grad = tape.gradient(total, moved)
                grad = grad / (tf.sqrt(tf.reduce_mean(grad**2)) + 1e-8)
                moved = tf.clip_by_value(moved + rate * grad, low, high)
                x = tf.roll(moved, -shifts[: len(axes)], axes) if axes else moved
                return i + 1, x

            _, x = tf.while_loop(lambda i, x: i < steps, step, [tf.constant(0), x])
            return x, objective(x, index)

        return fn

    key = ("maximize", id(layer), logits, steps, jitter, l2, tv, rate, low, high)
    return _targets.compiled(model, key, build)


def activation_maximization(
    model,
    layer,
    index,
    *,
    input_shape=None,
    steps=256,
    learning_rate=0.05,
    jitter=2,
    l2=1e-3,
    total_variation=1e-3,
    value_range=(0.0, 1.0),
    logits=True,
    seed=0,
    return_scores=False,
):
    """Synthesizes the input that excites a filter, unit or class most
    (Erhan et al., 2009; Simonyan et al., 2014).

    Gradient ascent from a faint random image on the mean activation of
    channel `index` of `layer` (its value, for a Dense output such as a
    class logit), with the usual regularizers: a random jitter of up to
    `jitter` pixels before each step (undone after it), an L2 penalty, a
    total-variation penalty, and clipping to `value_range`. Steps are
    normalized by the gradient's RMS.

    Args:
        model: A built Keras 3 model with one input.
        layer: A layer name, path or Layer; for a class, the output layer.
        index: The channel or class: an int or a sequence of ints.
        input_shape: One input's shape, needed when the model's is not
            fully known. Defaults to the model's.
        steps: Ascent steps. Defaults to 256.
        learning_rate: Step size, in units of the value range. Defaults to
            0.05.
        jitter: Largest random shift in pixels. Defaults to 2.
        l2: Weight of the L2 penalty (the mean square). Defaults to 1e-3.
        total_variation: Weight of the total-variation penalty (the mean
            absolute difference of neighbours). Defaults to 1e-3.
        value_range: `(low, high)` of the inputs. Defaults to `(0.0, 1.0)`.
        logits: Score the logits when `layer` ends in softmax or sigmoid.
            Defaults to `True`.
        seed: Seed of the starting image and the jitter. Defaults to 0.
        return_scores: Also return the final activation of each image.

    Returns:
        float32 array of shape `(len(index), *input_shape)`, or
        `(images, scores)` with `return_scores=True`.

    Cost: `steps` forward and backward passes per index, all indices in
    one batch.
    """
    _layers.check_model(model)
    path, found = _layers.find_layer(model, layer)
    indices = np.atleast_1d(np.asarray(index))
    if (
        indices.ndim != 1
        or not np.issubdtype(indices.dtype, np.integer)
        or (indices < 0).any()
    ):
        raise ValueError(
            "`index` must be an int >= 0 or a sequence of them. "
            f"Received: index={index!r}"
        )
    try:
        channels = found.output.shape[-1]
    except (AttributeError, ValueError):
        channels = None
    if channels is not None and (indices >= channels).any():
        raise ValueError(
            f"`index` must lie in [0, {channels - 1}] for the {channels} "
            f"channels of layer {path!r}. Received: index={index!r}"
        )
    steps = _targets.check_positive_int(steps, "steps")
    if input_shape is None:
        input_shape = _targets._input_shape(model)
        input_shape = None if input_shape is None else input_shape[1:]
    if input_shape is None or any(d is None for d in input_shape):
        raise ValueError(
            "`input_shape` must be given when the model's input shape is not "
            f"fully known. Received: input_shape={input_shape}"
        )
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(
            "`value_range` must be (low, high) with low < high. "
            f"Received: value_range={value_range!r}"
        )
    for name, value in (
        ("learning_rate", learning_rate),
        ("l2", l2),
        ("total_variation", total_variation),
    ):
        if not isinstance(value, numbers.Real) or value < 0:
            raise ValueError(
                f"`{name}` must be a number >= 0. Received: {name}={value!r}"
            )
    if (
        isinstance(jitter, bool)
        or not isinstance(jitter, numbers.Integral)
        or jitter < 0
    ):
        raise ValueError(f"`jitter` must be an int >= 0. Received: jitter={jitter!r}")
    span = high - low
    start = (
        np.random.default_rng(seed)
        .normal((low + high) / 2, 0.01 * span, size=(len(indices), *input_shape))
        .astype("float32")
    )
    _layers.find_final_layer(model, start[:1])
    fn = _max_function(
        model,
        found,
        path,
        bool(logits),
        steps,
        int(jitter),
        float(l2),
        float(total_variation),
        float(learning_rate) * span,
        low,
        high,
    )
    images, scores = fn(start, indices.astype("int32"), tf.constant(seed, tf.int32))
    images = np.asarray(images, "float32")
    if return_scores:
        return images, np.asarray(scores, "float32")
    return images
