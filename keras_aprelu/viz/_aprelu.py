"""Looking inside activations: APReLU's per-sample slopes, and dead units."""

import contextlib

import keras
import numpy as np

from keras_aprelu.layers import APReLU
from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _registry

__all__ = ["aprelu_slopes", "dead_units"]


def _aprelu_layers(model):
    found = [
        (path, layer)
        for path, layer in _layers.walk(model)
        if isinstance(layer, APReLU)
    ]
    if not found:
        raise ValueError(
            "`model` has no APReLU layer, so it has no slopes to show. "
            f"Received: model={model.name!r}"
        )
    return found


@contextlib.contextmanager
def _recording_slopes(layers, store, training):
    """Inside, each call of `layers[i]` puts its slopes in `store[i]`,
    computed in training mode (the statistics of the batch) or not."""
    with contextlib.ExitStack() as stack:
        for index, layer in enumerate(layers):

            def call(
                inputs,
                *args,
                _original=layer.call,
                _layer=layer,
                _index=index,
                **kwargs,
            ):
                store[_index] = _layer.slopes(inputs, training=training)
                return _original(inputs, *args, **kwargs)

            stack.enter_context(_layers.patched(layer, "call", call))
        yield


def _slopes_fn(model, layout, layers, training):
    """xs -> the slopes of each of `layers`, float32, in inference mode or
    as `fit` computes them (the caller undoes what training mode changes in
    the layers' moving statistics)."""

    def fn(xs):
        store = {}
        with _recording_slopes(layers, store, training=training):
            model(layout.to_model(xs), training=False)
        return [keras.ops.cast(store[i], "float32") for i in range(len(layers))]

    return fn


def _slopes_function(model, layout, layers):
    """The inference-mode `_slopes_fn`, compiled once per model."""
    key = ("slopes", layout, *map(id, layers))
    return _backend.compiled(
        model, key, lambda model: _slopes_fn(model, layout, layers, training=False)
    )


def aprelu_slopes(model, inputs, *, training=False, batch_size=64, progress=False):
    """The negative slopes APReLU gives each input, for every APReLU layer.

    Args:
        model: A Keras 3 model with at least one APReLU layer, anywhere
            (nested models included).
        inputs: As in `saliency`: an array, a list or dict of them, or a
            `tf.data.Dataset`.
        training: Defaults to `False`: the slopes of inference, those of
            `predict` and `evaluate`. With `True`, the slopes as `fit`
            computes them: where the sub-network has batch norms
            (`APReLU(normalization="batch")`), each batch of `batch_size`
            inputs is normalized with its own statistics, and the layer's
            moving statistics are left as they were. The two agree for the
            default `normalization="none"` and for `"layer"`; where they
            differ, inference does not compute what training learned (the
            Layers guide, "APReLU in inference mode").
        batch_size: Samples per pass. Defaults to 64.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        dict from layer path to a float32 array of shape `(batch, C)`, in
        the order the model holds the layers.

    Cost: one forward pass per input (run eagerly with `training=True`).
    """
    training = _args.check_bool(training, "training")
    batch_size = _args.check_positive_int(batch_size, "batch_size")
    progress = _args.check_bool(progress, "progress")
    _layers.check_model(model)
    found = _aprelu_layers(model)
    data = _inputs.read(model, inputs)
    layers = [layer for _, layer in found]
    if not training:
        fn = _slopes_function(model, data.layout, layers)
        slopes = _inputs.collect(data, batch_size, lambda _, xs: fn(xs), progress)
    else:
        # Eager: batch mode updates the moving statistics, undone below.
        fn = _slopes_fn(model, data.layout, layers, training=True)
        state = [v for layer in layers for v in layer.non_trainable_variables]
        saved = [_backend.to_numpy(v) for v in state]
        try:
            slopes = _inputs.collect(data, batch_size, lambda _, xs: fn(xs), progress)
        finally:
            for variable, value in zip(state, saved, strict=True):
                variable.assign(value)
    return {path: values for (path, _), values in zip(found, slopes, strict=True)}


def _counted_layers(model):
    """The activations `dead_units` counts: every one the registry says
    can die, except the model's final layer (its output is the answer)."""
    final = _layers.final_layer(model)
    return [
        found
        for found in _registry.activations(model)
        if found.layer is not final and found.entry.dead is not None
    ]


def _alive_function(model, layout, counted, per_channel):
    layers = [found.layer for found in counted]
    rules = [found.entry.dead for found in counted]

    def build(model):
        def fn(xs):
            store = {}
            with _layers.recording(layers, store):
                model(layout.to_model(xs), training=False)
            alive = []
            for i, rule in enumerate(rules):
                out = store[i]
                rank = len(out.shape)
                if per_channel:
                    channel = 1 if layout.channels_first and rank > 2 else rank - 1
                    axes = [a for a in range(rank) if a != channel]
                else:
                    axes = [0]
                fires = out > 0 if rule == "positive" else out != 0
                alive.append(keras.ops.any(fires, axis=axes))
            return alive

        return fn

    key = ("alive", layout, per_channel, *map(id, layers))
    return _backend.compiled(model, key, build)


def dead_units(model, inputs, *, per="channel", batch_size=64, progress=False):
    """The fraction of units of each activation layer never active on
    `inputs`.

    A unit is active when its output is positive (for ReLU-like
    activations: when it is in its identity part; for the shrink functions,
    when it is not zero). With `per="channel"` a unit is a channel, alive if
    it fires at any position of any input; with `per="neuron"` it is a
    single output element (channel and position). Activations whose output
    is always positive (sigmoid, softplus, softmax, ...) cannot die and are
    left out; which activations count, and how, is `_registry`'s.

    Args:
        model: A Keras 3 model.
        inputs: As in `saliency`: an array, a list or dict of them, or a
            `tf.data.Dataset`.
        per: `"channel"` or `"neuron"`. Defaults to `"channel"`.
        batch_size: Samples per pass. Defaults to 64.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        dict from layer path to the fraction of dead units, a float in
        [0, 1], for every activation layer and every layer with a nonlinear
        `activation`, except the model's final layer.

    Cost: one forward pass per input.
    """
    per = _args.check_choice(per, "per", ("channel", "neuron"))
    batch_size = _args.check_positive_int(batch_size, "batch_size")
    progress = _args.check_bool(progress, "progress")
    data = _inputs.read(model, inputs)
    counted = _counted_layers(model)
    if not counted:
        raise ValueError(
            "`model` has no activation layer to inspect. "
            f"Received: model={model.name!r}"
        )
    fn = _alive_function(model, data.layout, counted, per == "channel")
    # OR over the batches, as a running reduction: only one batch's flags
    # are held at a time.
    alive = [None] * len(counted)

    def compute(_, xs):
        for i, now in enumerate(fn(xs)):
            now = np.asarray(_backend.to_numpy(now))
            alive[i] = now if alive[i] is None else alive[i] | now
        return []

    _inputs.collect(data, batch_size, compute, progress)
    return {
        found.path: float(1 - a.mean()) for found, a in zip(counted, alive, strict=True)
    }
