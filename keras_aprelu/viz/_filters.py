"""What a layer has learned: its kernels, its feature maps, and the inputs
that excite it most."""

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _model
from keras_aprelu.viz import _request

__all__ = ["activation_maximization", "feature_maps", "filters"]


def _kernel_of(layer):
    """(kernel, depthwise) of a conv layer: the kernel it slides over its
    input (a separable conv's depthwise one), and whether it is applied per
    input channel; None for a layer without one."""
    kernel = getattr(layer, "depthwise_kernel", None)
    if kernel is None:
        kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) < 3:
        return None
    return kernel, hasattr(layer, "depth_multiplier")


def _conv_layer(model, layer):
    if layer is None:
        for path, found in _layers.walk(model):
            if _kernel_of(found) is not None:
                return path, found
        raise ValueError(
            "`model` has no convolution layer whose kernels could be drawn. "
            f"Received: model={model.name!r}"
        )
    path, found = _layers.find_layer(model, layer)
    if _kernel_of(found) is None:
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
    kernel, depthwise = _kernel_of(found)
    kernel = np.asarray(keras.ops.convert_to_numpy(kernel), "float32")
    if depthwise:
        kernel = kernel.reshape(*kernel.shape[:-2], 1, -1)
    return np.moveaxis(kernel, -1, 0).copy()


def _feature_function(model, layout, layer, path):
    def build(model):
        def fn(xs):
            store = {}
            with _layers.recording([layer], store):
                model(layout.to_model(xs), training=False)
            if 0 not in store:
                raise ValueError(
                    f"`layer` {path!r} was not called when the model ran. "
                    f"Received: layer={path!r}"
                )
            return [keras.ops.cast(store[0], "float32")]

        return fn

    return _backend.compiled(model, ("features", layout, id(layer)), build)


def feature_maps(model, inputs, layer, *, batch_size=64, progress=False):
    """The outputs of `layer` for a batch.

    Args:
        model: A Keras 3 model.
        inputs: As in `saliency`: an array, a list or dict of them, or a
            `tf.data.Dataset`.
        layer: A layer name, path or Layer.
        batch_size: Samples per pass. Defaults to 64.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        float32 array, the layer's output as the layer gives it: shape
        `(batch, *spatial, channels)` for a channels-last conv layer.

    Cost: one forward pass per input.
    """
    batch_size = _args.check_positive_int(batch_size, "batch_size")
    progress = _args.check_bool(progress, "progress")
    data = _inputs.read(model, inputs)
    path, found = _layers.find_layer(model, layer)
    fn = _feature_function(model, data.layout, found, path)
    (maps,) = _inputs.collect(data, batch_size, lambda _, xs: fn(xs), progress)
    return maps


def _max_function(model, plan, layer, steps, jitter, l2, tv, rate, low, high):
    first = plan.layout.channels_first

    def build(model):
        def objective(x, index):
            store = {}
            with plan.logits_applied():
                with _layers.recording([layer], store):
                    plan.forward(model, [x])
            out = keras.ops.cast(store[0], "float32")
            if len(out.shape) > 2:  # a feature map: the mean over its positions
                rank = len(out.shape)
                axes = range(2, rank) if first else range(1, rank - 1)
                out = keras.ops.mean(out, axis=list(axes))
            return keras.ops.take_along_axis(out, index[:, None], axis=1)[:, 0]

        def fn(x, index, shift_table):
            spatial = len(x.shape) - 2
            axes = list(range(2, 2 + spatial) if first else range(1, 1 + spatial))

            def roll(x, shifts):
                for axis, shift in zip(axes, shifts, strict=False):
                    x = keras.ops.roll(x, shift, axis=axis)
                return x

            def step(i, x):
                shifts = keras.ops.take(shift_table, i, axis=0)
                shifts = [shifts[a] for a in range(spatial)]
                moved = roll(x, shifts)

                def total(args, _):
                    (moved,) = args
                    penalty = l2 * keras.ops.mean(moved**2)
                    if tv and spatial:
                        penalty += tv * sum(
                            keras.ops.sum(keras.ops.abs(keras.ops.diff(moved, axis=a)))
                            for a in axes
                        )
                    # One score per image; their sum is the objective.
                    count = keras.ops.cast(keras.ops.shape(moved)[0], "float32")
                    return objective(moved, index) - penalty / count, None

                _, _, (grad,), _ = _backend.grad(total, [moved])
                grad = grad / (keras.ops.sqrt(keras.ops.mean(grad**2)) + 1e-8)
                moved = keras.ops.clip(moved + rate * grad, low, high)
                return i + 1, roll(moved, [-s for s in shifts])

            _, x = keras.ops.while_loop(
                lambda i, x: i < steps, step, (keras.ops.convert_to_tensor(0), x)
            )
            return x, objective(x, index)

        return fn

    key = ("maximize", id(layer), plan.logits, steps, jitter, l2, tv, rate, low, high)
    return _backend.compiled(model, key, build)


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
    steps = _args.check_positive_int(steps, "steps")
    if input_shape is None:
        known = _model.read(model).declared
        input_shape = known[0].shape[1:] if len(known) == 1 else None
    if input_shape is None or any(d is None for d in input_shape):
        raise ValueError(
            "`input_shape` must be given when the model's input shape is not "
            f"fully known. Received: input_shape={input_shape}"
        )
    low, high = (_args.check_number(v, "value_range") for v in value_range)
    if not low < high:
        raise ValueError(
            "`value_range` must be (low, high) with low < high. "
            f"Received: value_range={value_range!r}"
        )
    rate = _args.check_number(learning_rate, "learning_rate", 0)
    l2 = _args.check_number(l2, "l2", 0)
    total_variation = _args.check_number(total_variation, "total_variation", 0)
    jitter = _args.check_int(jitter, "jitter", 0)
    logits = _args.check_bool(logits, "logits")
    seed = _args.check_int(seed, "seed", 0)
    span = high - low
    # In NumPy, so that every backend starts from the same image, and so
    # does a channels-first twin.
    rng = np.random.default_rng(seed)
    start = _inputs.drawn_channels_last(
        lambda shape: rng.normal(
            (low + high) / 2, 0.01 * span, size=(len(indices), *shape)
        ),
        input_shape,
        _layers.data_format(model) == "channels_first" and len(input_shape) > 1,
    ).astype("float32")
    # Read as any input is (checked against the model, which is inspected).
    plan = _request.plan_of(_inputs.read(model, start), logits=logits)
    fn = _max_function(
        model, plan, found, steps, jitter, l2, total_variation, rate * span, low, high
    )
    # The jitter of every step, drawn in NumPy: the same on every backend.
    spatial = max(len(input_shape) - 1, 1)
    shift_table = (
        np.random.default_rng([seed, 1])
        .integers(-jitter, jitter + 1, size=(steps, spatial))
        .astype("int32")
    )
    images, scores = fn(start, indices.astype("int32"), shift_table)
    images = np.asarray(images, "float32")
    if return_scores:
        return images, np.asarray(scores, "float32")
    return images
