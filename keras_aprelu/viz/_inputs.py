"""The one door through which inputs enter viz.

`read(model, inputs)` accepts what `model.predict` accepts:

- one array or tensor, batch first, for a model with one input;
- a list (or tuple) of them, or a dict keyed by input name, for a model with
  several inputs;
- a `tf.data.Dataset` of batches, in the same structures, optionally as
  `(x, y)` or `(x, y, sample_weight)` pairs as `fit` takes them. It is
  streamed, never held in memory whole.

It checks the inputs once (numeric, finite, of the model's shapes, batch
sizes that agree), converts them to float32 batch by batch, and knows their
layout: which axis of each input is its channel axis (the model's
`data_format` decides, read once with the rest of `_model.Facts`), and
which are spatial.
Every map comes back over the spatial axes alone, in the structure of the
inputs: one array for one input, a list or dict of them for several.
"""

import dataclasses
import numbers
import warnings

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _model


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the inputs are laid out; holds no data and no model, so compiled
    functions may keep it."""

    kind: str  # "array", "list" or "dict"
    keys: tuple  # the dict's keys, or the list's indices
    ranks: tuple  # rank of each input, batch included
    channels_first: bool

    def channel_axis(self, i):
        """The channel axis of input i, or None for a (batch, features)
        input, where every feature is a position of its own."""
        if self.ranks[i] < 3:
            return None
        return 1 if self.channels_first else self.ranks[i] - 1

    def spatial_axes(self, i):
        channel = self.channel_axis(i)
        return tuple(a for a in range(1, self.ranks[i]) if a != channel)

    def spatial_shape(self, i, shape):
        return tuple(shape[a] for a in self.spatial_axes(i))

    def to_model(self, xs):
        """A list with one batch per input -> the structure the model takes."""
        if self.kind == "array":
            return xs[0]
        if self.kind == "dict":
            return dict(zip(self.keys, xs, strict=True))
        return list(xs)

    def pack(self, per_input):
        """One result per input -> the structure the user passed."""
        if self.kind == "array":
            return per_input[0]
        if self.kind == "dict":
            return dict(zip(self.keys, per_input, strict=True))
        return list(per_input)

    def reduce_channels(self, i, values, how):
        """Reduces the channel axis of a batch of input i: "max_abs" (the
        largest magnitude) or "sum". A (batch, features) input keeps its
        shape ("max_abs" takes the magnitude)."""
        axis = self.channel_axis(i)
        if axis is None:
            return keras.ops.abs(values) if how == "max_abs" else values
        if how == "max_abs":
            return keras.ops.max(keras.ops.abs(values), axis=axis)
        return keras.ops.sum(values, axis=axis)

    def broadcast_spatial(self, i, mask):
        """A (batch, *spatial) mask, expanded to broadcast over channels."""
        axis = self.channel_axis(i)
        return mask if axis is None else keras.ops.expand_dims(mask, axis)


class Inputs:
    """The user's inputs, checked, with their layout. Batches come from
    `batches(size)`."""

    def __init__(self, facts, inputs):
        self.facts = facts
        self.model = facts.model
        self._dataset = inputs if _backend.is_dataset(inputs) else None
        if self._dataset is not None:
            element = next(iter(self._dataset), None)
            if element is None:
                raise ValueError(
                    "`inputs` holds no sample. Received: an empty tf.data.Dataset"
                )
            first = _x_of(element)
            self._arrays = None
        else:
            first = inputs
        kind, keys, items = _flatten(facts, first)
        arrays = [
            _as_array(item, kind, key) for item, key in zip(items, keys, strict=True)
        ]
        _check_against_model(facts, kind, keys, arrays)
        # One sample's shape per input (of the first batch, for a stream).
        self.sample_shapes = tuple(tuple(a.shape[1:]) for a in arrays)
        if self._dataset is None:
            _check_batch_sizes(arrays, keys, kind)
            self._arrays = arrays
            self.count = len(arrays[0])
            if not self.count:
                raise ValueError(
                    "`inputs` holds no sample. "
                    f"Received: {_name(kind, keys[0])}.shape={arrays[0].shape}"
                )
        else:
            self.count = None
        self.layout = Layout(
            kind=kind,
            keys=tuple(keys),
            ranks=tuple(a.ndim for a in arrays),
            channels_first=facts.channels_first,
        )
        # One sample's spatial shape per input (a map's axes over it).
        self.spatial_shapes = tuple(
            self.layout.spatial_shape(i, (None, *shape))
            for i, shape in enumerate(self.sample_shapes)
        )
        sample = [
            _checked(a[:1], key, kind, 0) for a, key in zip(arrays, keys, strict=True)
        ]
        # Which layers ran, in order, and which made the output: read once.
        self.inspection = _layers.inspect(self.model, self.layout.to_model(sample))

    def batches(self, size):
        """Yields (start, [one float32 batch per input]) of `size` samples
        (the last one fewer), checked."""
        start = 0
        for part in self._parts(size):
            checked = [
                _checked(a, key, self.layout.kind, start)
                for a, key in zip(part, self.layout.keys, strict=True)
            ]
            yield start, checked
            start += len(checked[0])
        if start == 0:
            raise ValueError(
                "`inputs` holds no sample. Received: inputs with 0 samples"
            )
        self.count = start

    def _parts(self, size):
        if self._dataset is None:
            for first in range(0, self.count, size):
                yield [a[first : first + size] for a in self._arrays]
            return
        # Re-batch the stream into batches of `size`.
        pending, held = [], 0
        for element in self._dataset:
            kind, keys, items = _flatten(self.facts, _x_of(element))
            if kind != self.layout.kind or tuple(keys) != self.layout.keys:
                raise ValueError(
                    "Every element of the `inputs` dataset must have the "
                    f"structure of the first. Received: a {kind} with keys "
                    f"{list(keys)} after a {self.layout.kind} with keys "
                    f"{list(self.layout.keys)}"
                )
            arrays = [
                _as_array(item, kind, key)
                for item, key in zip(items, keys, strict=True)
            ]
            _check_against_model(self.facts, kind, keys, arrays)
            _check_batch_sizes(arrays, keys, kind)
            pending.append(arrays)
            held += len(arrays[0])
            while held >= size:
                merged = [
                    np.concatenate(column) for column in zip(*pending, strict=True)
                ]
                yield [m[:size] for m in merged]
                pending = [[m[size:] for m in merged]]
                held -= size
        if held:
            yield [np.concatenate(column) for column in zip(*pending, strict=True)]


def read(model, inputs):
    """The checked `Inputs` of a call; `model` is a Keras model or its
    `_model.Facts`, read already."""
    return Inputs(_model.read(model), inputs)


def _x_of(element):
    x, _, _ = keras.utils.unpack_x_y_sample_weight(element)
    return x


def integer_inputs(facts, layout):
    """The keys of the inputs that the model declares integer or boolean
    (token ids, segment ids, masks): the model reads them as indices or
    flags, and no gradient reaches them. Empty when the model declares no
    inputs (a subclassed model that was not built from `keras.Input`)."""
    declared = facts.declared_for(layout.kind, layout.keys)
    if declared is None or len(declared) != len(layout.keys):
        return []
    return [key for key, d in zip(layout.keys, declared, strict=True) if not d.is_float]


def check_gradient_reaches_inputs(facts, layout):
    """For a method that differentiates with respect to the inputs: an
    error if the model takes every input as integers, a warning if some."""
    integer = integer_inputs(facts, layout)
    if not integer:
        return
    names = ", ".join(_name(layout.kind, key) for key in integer)
    way_out = (
        "Attribute to the output of the embedding layer instead: name it "
        "with `layer=` (keras-hub's text models: "
        '`layer="token_embedding"`). Or explain them with `viz.occlusion`, '
        "which needs no gradient."
    )
    if len(integer) == len(layout.keys):
        raise ValueError(
            "This method takes the gradient of the score with respect to the "
            "inputs, and the model takes its inputs as integers (token ids or "
            "flags), where no gradient reaches: every map would be zero. "
            f"{way_out} Received: integer inputs {names}"
        )
    warnings.warn(
        f"The model takes {names} as integers (token "
        "ids or flags), where no gradient reaches: their maps are zero, "
        f"whatever they matter. {way_out}",
        stacklevel=4,
    )


def _flatten(facts, inputs):
    """(kind, keys, items) of what the user passed."""
    if isinstance(inputs, dict):
        if not inputs:
            raise ValueError("`inputs` must not be empty. Received: inputs={}")
        return "dict", list(inputs), list(inputs.values())
    if isinstance(inputs, (list, tuple)):
        if not len(inputs):
            raise ValueError("`inputs` must not be empty. Received: inputs=[]")
        # A list is one entry per model input, as `predict` takes it, unless
        # the model has a single input and the list holds its samples.
        expected = len(facts.declared)
        arrays = all(hasattr(item, "shape") for item in inputs)
        if expected > 1 or (arrays and (expected == 0 or len(inputs) == 1)):
            return "list", list(range(len(inputs))), list(inputs)
    return "array", [0], [inputs]


def _name(kind, key):
    return "inputs" if kind == "array" else f"inputs[{key!r}]"


def _as_array(item, kind, key):
    try:
        array = np.asarray(item)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{_name(kind, key)}` must be an array or tensor, batch first "
            f"({error}). Received: {_name(kind, key)}={type(item).__name__}"
        ) from None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(
            f"`{_name(kind, key)}` must be numeric, an array or tensor batch "
            f"first (a .npy file's contents, not its name). Received: "
            f"{_name(kind, key)}.dtype={array.dtype} ({_shown(item)})"
        )
    if array.ndim < 2:
        raise ValueError(
            f"`{_name(kind, key)}` must be a batch, of rank >= 2 with the batch "
            f"axis first. Received: {_name(kind, key)}.shape={array.shape}"
        )
    return array


def _shown(item):
    text = repr(item)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_batch_sizes(arrays, keys, kind):
    sizes = {len(a) for a in arrays}
    if len(sizes) > 1:
        shown = ", ".join(f"{k!r}: {len(a)}" for k, a in zip(keys, arrays, strict=True))
        raise ValueError(
            "Every input must hold the same number of samples. "
            f"Received: inputs with batch sizes {{{shown}}}"
        )


def _check_against_model(facts, kind, keys, arrays):
    expected = list(facts.declared)
    if not expected:
        return  # a subclassed model: calling it checks the shapes
    if kind == "dict":
        by_name = {d.name: d for d in expected}
        unknown = [k for k in keys if k not in by_name]
        if unknown or len(keys) != len(expected):
            raise ValueError(
                "`inputs` must have one entry per model input, keyed "
                f"{sorted(by_name)}. Received: inputs with keys {list(keys)}"
            )
        expected = [by_name[k] for k in keys]
    elif len(arrays) != len(expected):
        raise ValueError(
            f"`inputs` must hold one array per model input ({len(expected)}). "
            f"Received: {len(arrays)} "
            f"{'array' if len(arrays) == 1 else 'arrays'}"
        )
    for key, array, declared in zip(keys, arrays, expected, strict=True):
        want = declared.shape
        fits = array.ndim == len(want) and all(
            w is None or w == g for w, g in zip(want[1:], array.shape[1:], strict=True)
        )
        if not fits:
            shown = "(batch, " + ", ".join(str(d) for d in want[1:]) + ")"
            raise ValueError(
                f"`{_name(kind, key)}` must have shape {shown}, batch first "
                f"(None: any size). Received: "
                f"{_name(kind, key)}.shape={array.shape}"
            )


def _checked(array, key, kind, start):
    """One batch as float32, refusing NaN and Inf."""
    x = np.asarray(array, dtype="float32")
    finite = np.isfinite(x)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        where = (where[0] + start, *where[1:])
        raise ValueError(
            f"`{_name(kind, key)}` must be finite: NaN or Inf would make every "
            f"map meaningless. Received: {_name(kind, key)}[{where}]="
            f"{float(x[(where[0] - start, *where[1:])])}"
        )
    return x


def collect(inputs, size, compute, progress=False):
    """Runs `compute(start, xs)` on every batch of `size` and concatenates
    what it returns, a list of arrays, column by column."""
    bar = keras.utils.Progbar(inputs.count, unit_name="sample") if progress else None
    columns = None
    for start, xs in inputs.batches(size):
        results = [np.asarray(_backend.to_numpy(r)) for r in compute(start, xs)]
        if columns is None:
            columns = [[] for _ in results]
        for column, result in zip(columns, results, strict=True):
            column.append(result)
        if bar is not None:
            bar.update(start + len(xs[0]))
    return [np.concatenate(column) for column in columns or []]


# Targets -----------------------------------------------------------------


class Targets:
    """`target` resolved: class indices per sample (-1: the predicted class)
    or a callable score."""

    def __init__(self, target, count, num_classes):
        self.score_fn = None
        self.values = None  # a fixed int for every sample, or a sequence
        self._target = target
        if target is None or callable(target):
            self.score_fn = target
            self.fixed = -1
            return
        if _args.is_int(target) or (
            isinstance(target, np.ndarray)
            and target.ndim == 0
            and np.issubdtype(target.dtype, np.integer)
        ):
            self.fixed = int(target)
            self._check_range(np.array([self.fixed]), num_classes)
            return
        values = np.asarray(target) if not isinstance(target, str) else None
        if (
            values is None
            or values.ndim != 1
            or not (np.issubdtype(values.dtype, np.integer))
        ):
            raise ValueError(
                "`target` must be None, an int, a sequence of ints (one per "
                f"input) or a callable. Received: target={target!r}"
            )
        if count is not None and len(values) != count:
            raise ValueError(
                f"`target` must hold one class per input ({count}). "
                f"Received: target={target!r} (length {len(values)})"
            )
        self._check_range(values, num_classes)
        self.values = values.astype("int32")
        self.fixed = None

    def _check_range(self, values, num_classes):
        if num_classes is None:
            return
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(
                f"`target` must lie in [0, {num_classes - 1}] for this model's "
                f"{num_classes} outputs. Received: target={self._target!r}"
            )

    def slice(self, start, stop):
        """int32 classes of samples start..stop-1 (-1: predicted)."""
        if self.values is None:
            return np.full((stop - start,), self.fixed, "int32")
        if stop > len(self.values):
            raise ValueError(
                "`target` must hold one class per input, but `inputs` holds "
                f"more than {len(self.values)}. Received: target of length "
                f"{len(self.values)}"
            )
        return self.values[start:stop]

    def check_count(self, count):
        if self.values is not None and len(self.values) != count:
            raise ValueError(
                f"`target` must hold one class per input ({count}). "
                f"Received: target of length {len(self.values)}"
            )

    @property
    def key(self):
        """What compiled functions depend on: the callable, by its code."""
        return _backend.callable_key(self.score_fn)


# Baselines and maps ----------------------------------------------------


def trapezoid_weights(steps):
    """The trapezoid rule's weights over `steps + 1` evenly spaced points of
    [0, 1], both ends included."""
    weights = np.full(steps + 1, 1.0 / steps, "float32")
    weights[[0, -1]] /= 2
    return weights


def straight_path(start, end, points):
    """`points` evenly spaced points from `start` to `end` (batches of one
    shape), both ends included, as one batch with each sample's points
    together: (batch * points, *shape[1:])."""
    alphas = keras.ops.reshape(
        keras.ops.linspace(0.0, 1.0, points), [1, -1] + [1] * (len(end.shape) - 1)
    )
    path = start[:, None] + alphas * (end - start)[:, None]
    return keras.ops.reshape(path, [-1, *keras.ops.shape(end)[1:]])


def path_mean(values, weights):
    """Values at the points of `straight_path`, (batch * points, ...), ->
    their mean along each sample's path with `weights`, (batch, ...)."""
    rest = keras.ops.shape(values)[1:]
    values = keras.ops.reshape(values, [-1, len(weights), *rest])
    w = keras.ops.reshape(weights, [1, -1] + [1] * (len(values.shape) - 2))
    return keras.ops.sum(w * values, axis=1)


def per_input(value, name, layout):
    """`value` for each input: a list or dict holds one per input (for
    several inputs); anything else is the same for all."""
    count = len(layout.ranks)
    if layout.kind == "array" or not isinstance(value, (list, dict)):
        return [value] * count
    items = [value.get(k) for k in layout.keys] if isinstance(value, dict) else value
    if len(items) != count:
        raise ValueError(
            f"`{name}` as a list or dict must hold one entry per input "
            f"({count}). Received: {name}={value!r}"
        )
    return items


def baselines(baseline, layout, xs, start):
    """`baseline` for a batch: one float32 array per input, of its shape.

    `baseline` is a number, an array of the shape of one input or of the
    whole batch, or (several inputs) a list or dict of those. A per-sample
    baseline is sliced from `start`.
    """
    items = per_input(baseline, "baseline", layout)
    out = []
    for item, x in zip(items, xs, strict=True):
        base = np.asarray(item, dtype="float32") if is_numeric(item) else None
        if base is not None and base.ndim == x.ndim and len(base) > 1:
            base = base[start : start + len(x)]
        try:
            out.append(np.ascontiguousarray(np.broadcast_to(base, x.shape)))
        except (ValueError, TypeError):
            shape = getattr(item, "shape", type(item).__name__)
            raise ValueError(
                "`baseline` must be a number, or an array of the shape of one "
                f"input {x.shape[1:]} or of the batch. "
                f"Received: baseline.shape={shape}"
            ) from None
        if not np.isfinite(out[-1]).all():
            raise ValueError(
                f"`baseline` must be finite. Received: baseline={_shown(item)}"
            )
    return out


def is_numeric(value):
    """Whether `value` converts to a numeric NumPy array."""
    if isinstance(value, numbers.Number):
        return True
    try:
        return np.issubdtype(np.asarray(value).dtype, np.number)
    except (ValueError, TypeError):
        return False


def drawn_channels_last(draw, shape, channels_first):
    """`draw(shape)` for one input of `shape` (batch axis excluded), drawn
    channels last and moved when `channels_first`: a channels-first twin
    then gets the same values. `draw` may add leading axes."""
    if not channels_first:
        return draw(tuple(shape))
    values = draw((*shape[1:], shape[0]))
    return np.moveaxis(values, -1, values.ndim - len(shape))


def noisy_copies(layout, xs, level, start, seed, samples):
    """`samples` noisy copies of every input of a chunk, drawn in NumPy:
    per input, float32 of shape `(count * samples, *x.shape[1:])`, the
    copies of a sample adjacent.

    A copy is `x + level * ptp(x) * noise`, with `ptp(x)` the sample's
    value range and standard normal noise. Sample j of the whole batch
    (`start + j`) gets the noise of `np.random.default_rng([seed, start + j,
    i])` for model input i, however the batch is chunked and on every
    backend, drawn channels last (`drawn_channels_last`).
    """
    out = []
    for i, x in enumerate(xs):

        def draw(shape, i=i, x=x):
            return np.stack(
                [
                    np.random.default_rng([seed, start + j, i]).standard_normal(
                        (samples, *shape)
                    )
                    for j in range(len(x))
                ]
            )

        first = layout.channels_first and layout.channel_axis(i) is not None
        noise = drawn_channels_last(draw, x.shape[1:], first)
        spread = level * np.ptp(x.reshape(len(x), -1), axis=1)
        noisy = x[:, None] + spread.reshape((len(x),) + (1,) * x.ndim) * noise
        out.append(noisy.reshape(-1, *x.shape[1:]).astype("float32"))
    return out


def normalize_maps(maps):
    """Each map's magnitude divided by its largest, into [0, 1].

    Zero stays at 0, so "no attribution" is the bottom of a colormap. (A
    min-max stretch would paint the zero background of a signed map, such
    as integrated gradients, in the middle of the colormap.) An all-zero
    map stays zero.
    """
    maps = np.asarray(maps, dtype="float32")
    flat = np.abs(maps.reshape(len(maps), -1))
    peak = flat.max(axis=1, keepdims=True) if flat.size else flat
    out = flat / np.where(peak > 0, peak, 1)
    return out.reshape(maps.shape).astype("float32")


def finish(maps, normalize):
    maps = np.asarray(maps, dtype="float32")
    return normalize_maps(maps) if normalize else maps
