"""Batch-norm statistics recomputed with a model's final weights.

A batch norm's moving mean and variance are averages over the last hundred
or so training steps, each taken with the weights of its own step. Where the
weights still move quickly against the spread of what the batch norm sees,
as in APReLU's sub-network with `normalization="batch"` (docs/layers.md,
"APReLU in inference mode"), those averages lag behind the final weights and
inference goes wrong. `recalibrate_batch_norm` replaces them with the exact
statistics of the final network over the data it is given ("precise BN",
Wu & Johnson, 2021; PyTorch's `torch.optim.swa_utils.update_bn`).
"""

import keras
import numpy as np

from keras_aprelu import _checks


def batch_norms(model):
    """Every `keras.layers.BatchNormalization` that `model` (a model or a
    layer) holds, at any depth: in nested models and inside layers
    (APReLU's sub-network)."""
    # Keras has no public walk into the sublayers of a layer; this one has
    # been on `Layer` since Keras 3.0.
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def trainable_batch_norms(model):
    """The batch norms of `model` that training updates: a frozen one
    (`trainable=False`) normalizes with its moving statistics even in
    training, and keeps them."""
    return [bn for bn in batch_norms(model) if bn.trainable]


def _input_batches(data, batch_size, steps):
    """Yields the model inputs of each batch of `data`: arrays (one, or a
    list or dict of them) cut into batches of `batch_size`, or the `x` of
    each element of a stream (`tf.data.Dataset`, `keras.utils.PyDataset`,
    any iterable of batches, optionally as `(x, y)` pairs)."""
    if isinstance(data, tuple) and len(data) in (2, 3):
        data = data[0]  # (x, y) or (x, y, sample_weight), as `fit` takes
    arrays = data if isinstance(data, (list, dict)) else [data]
    values = list(arrays.values()) if isinstance(arrays, dict) else arrays
    if values and all(hasattr(a, "shape") and hasattr(a, "__len__") for a in values):
        count = len(values[0])
        for number, start in enumerate(range(0, count, batch_size)):
            if steps is not None and number >= steps:
                return
            yield keras.tree.map_structure(
                lambda a, start=start: a[start : start + batch_size], data
            )
        return
    if not hasattr(data, "__iter__") or isinstance(data, (str, bytes)):
        raise TypeError(
            "`data` must be an array (or a list or dict of them), an `(x, y)` "
            "tuple of them, a tf.data.Dataset, a keras.utils.PyDataset or an "
            f"iterable of batches. Received: data={type(data).__name__}"
        )
    for number, element in enumerate(data):
        if steps is not None and number >= steps:
            return
        x, _, _ = keras.utils.unpack_x_y_sample_weight(element)
        yield x


class _Moments:
    """The exact mean and (biased) variance per channel of everything that
    is added, combined batch by batch in float64 (Chan et al.'s pairwise
    update), so that a mean large against the spread loses no digits."""

    def __init__(self):
        self.count = 0
        self.mean = None
        self.m2 = None

    def add(self, values, axes):
        values = np.asarray(values, dtype="float64")
        count = int(np.prod([values.shape[a] for a in axes]))
        centre = values.mean(axis=axes, keepdims=True)
        m2 = ((values - centre) ** 2).sum(axis=axes)
        mean = np.squeeze(centre, axis=axes)
        if self.mean is None:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * count / total
        self.count = total

    @property
    def variance(self):
        return self.m2 / self.count


def recalibrate_batch_norm(model, data, steps=None, batch_size=32):
    """Recomputes every batch norm's moving statistics with the final weights.

    Runs `model` over `data` once, with every layer in inference mode except
    the batch norms, which normalize with the statistics of each batch as in
    training. Each batch norm's moving mean and moving variance become the
    exact mean and variance of its input over all of `data`: over every
    sample, and every position for a convolution's batch norm, as one
    population (precise BN, Wu & Johnson, 2021), not a moving average of
    per-batch values. Batch norms at any depth are recalibrated, inside
    nested models and inside layers, such as the sub-network of
    `APReLU(normalization="batch")`; frozen ones (`trainable=False`) keep
    their statistics, as in training. No other weight changes, and a model
    without batch norms is left exactly as it was, as is a model whose
    call raised.

    Use it after `fit` on a model whose inference-mode accuracy trails its
    training-mode accuracy, with a few thousand training samples; the
    callback `keras_aprelu.callbacks.RecalibrateBatchNorm` does it at the
    end of `fit`. It costs one forward pass over `data`, run eagerly.

    Args:
        model: A built Keras model.
        data: What `model.predict` takes: an array, or a list or dict of
            arrays for several inputs; an `(x, y)` tuple of them; a
            `tf.data.Dataset`, a `keras.utils.PyDataset` or any iterable of
            batches (`x` or `(x, y)`). Labels are ignored.
        steps: The number of batches to read. Defaults to `None`, all of
            `data` (an endless stream needs it).
        batch_size: The batch size for array data; a stream keeps its own.
            Defaults to `32`. The batch norms of the first layers see the
            same values whatever it is; deeper ones see the output of
            earlier batch norms, which depends on it a little, as in
            training.

    Returns:
        The list of the batch-norm layers that were recalibrated (those
        that `data` reached).

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_aprelu
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
    ...                           keras.layers.BatchNormalization()])
    >>> x = np.random.default_rng(0).normal(size=(100, 3)).astype("float32")
    >>> layers = keras_aprelu.recalibrate_batch_norm(model, x)
    >>> len(layers), layers[0].name
    (1, 'batch_normalization')
    >>> dense, bn = model.layers
    >>> h = keras.ops.convert_to_numpy(dense(x))
    >>> bool(np.allclose(bn.moving_mean, h.mean(0), atol=1e-6))
    True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a Keras model. Received: model={type(model).__name__}"
        )
    if steps is not None:
        steps = _checks.check_positive_int(steps, "steps")
    batch_size = _checks.check_positive_int(batch_size, "batch_size")
    norms = trainable_batch_norms(model)
    if not norms:
        return []
    moments = {id(bn): _Moments() for bn in norms}
    saved = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]

    def recording(bn):
        call = bn.call
        axes = None

        def record(inputs, training=None, mask=None):
            nonlocal axes
            if axes is None:
                axis = bn.axis % len(inputs.shape)
                axes = tuple(a for a in range(len(inputs.shape)) if a != axis)
            moments[id(bn)].add(keras.ops.convert_to_numpy(inputs), axes)
            return call(inputs, training=True, mask=mask)

        return record

    seen = False
    try:
        for bn in norms:
            bn.call = recording(bn)
        for x in _input_batches(data, batch_size, steps):
            model(x, training=False)
            seen = True
    finally:
        for bn in norms:
            bn.__dict__.pop("call", None)
        # Batch mode moved the moving statistics: put them back, so that
        # a call that fails leaves the model as it was.
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)
    if not seen:
        raise ValueError(f"`data` holds no batch. Received: data={data!r}")
    for bn in norms:
        stats = moments[id(bn)]
        if stats.mean is None:  # not on the path from the inputs
            continue
        dtype = keras.backend.standardize_dtype(bn.moving_mean.dtype)
        bn.moving_mean.assign(stats.mean.astype(dtype))
        bn.moving_variance.assign(stats.variance.astype(dtype))
        if bn.renorm:  # which keeps the standard deviation as well
            stddev = np.sqrt(stats.variance + bn.epsilon)
            bn.moving_stddev.assign(stddev.astype(dtype))
    return [bn for bn in norms if moments[id(bn)].mean is not None]
