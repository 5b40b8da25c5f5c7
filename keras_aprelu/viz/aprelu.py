"""Looking inside activations: APReLU's per-sample slopes, and dead units."""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from keras_aprelu.layers import APReLU
from keras_aprelu.layers import Maxout
from keras_aprelu.layers import PReLU
from keras_aprelu.layers import RReLU
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _targets

__all__ = ["aprelu_slopes", "dead_units"]

_ACTIVATION_LAYERS = (
    APReLU,
    PReLU,
    RReLU,
    Maxout,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Activation,
)


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


def _slopes_function(model, layers):
    def build():
        def fn(x):
            store = {}
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
                        store[_index] = _layer.slopes(inputs, training=False)
                        return _original(inputs, *args, **kwargs)

                    stack.enter_context(_layers.patched(layer, "call", call))
                model(x, training=False)
            return [tf.cast(store[i], "float32") for i in range(len(layers))]

        return fn

    return _targets.compiled(model, ("slopes", *map(id, layers)), build)


def aprelu_slopes(model, inputs, *, batch_size=64):
    """The negative slopes APReLU gives each input, for every APReLU layer.

    Args:
        model: A built Keras 3 model with at least one APReLU layer,
            anywhere (nested models included).
        inputs: A batch, channels last.
        batch_size: Samples per pass. Defaults to 64.

    Returns:
        dict from layer path to a float32 array of shape `(batch, C)`, in
        the order the model holds the layers. The slopes are those of
        inference (batch norm with its moving averages).

    Cost: one forward pass per input.
    """
    _layers.check_model(model)
    batch_size = _targets.check_positive_int(batch_size, "batch_size")
    x = _targets.as_batch(model, inputs)
    found = _aprelu_layers(model)
    fn = _slopes_function(model, [layer for _, layer in found])
    parts = [fn(x[part]) for part in _targets.chunks(len(x), batch_size)]
    return {
        path: np.concatenate([np.asarray(p[i]) for p in parts])
        for i, (path, _) in enumerate(found)
    }


def _activation_layers(model):
    final = _layers.final_layer(model)
    chosen = []
    for path, layer in _layers.walk(model):
        if layer is final or isinstance(layer, keras.Model):
            continue
        if isinstance(layer, _ACTIVATION_LAYERS):
            linear = isinstance(layer, keras.layers.Activation) and (
                _targets.function_name(layer.activation) in _targets.LINEAR
            )
            if not linear:
                chosen.append((path, layer))
            continue
        activation = getattr(layer, "activation", None)
        if callable(activation) and (
            _targets.function_name(activation) not in _targets.LINEAR
        ):
            chosen.append((path, layer))
    return chosen


def _alive_function(model, layers, per_channel):
    def build():
        def fn(x):
            store = {}
            with _layers.recording(layers, store):
                model(x, training=False)
            alive = []
            for i in range(len(layers)):
                out = store[i]
                axes = list(range(0, out.shape.rank - 1)) if per_channel else [0]
                alive.append(tf.reduce_any(out > 0, axis=axes))
            return alive

        return fn

    return _targets.compiled(model, ("alive", per_channel, *map(id, layers)), build)


def dead_units(model, inputs, *, per="channel", batch_size=64):
    """The fraction of units of each activation layer never active on
    `inputs`.

    A unit is active when its output is positive (for ReLU-like
    activations: when it is in its identity part). With `per="channel"`
    a unit is a channel, alive if it fires at any position of any input;
    with `per="neuron"` it is a single output element (channel and
    position).

    Args:
        model: A built Keras 3 model.
        inputs: A batch, channels last.
        per: `"channel"` or `"neuron"`. Defaults to `"channel"`.
        batch_size: Samples per pass. Defaults to 64.

    Returns:
        dict from layer path to the fraction of dead units, a float in
        [0, 1], for every activation layer and every layer with a nonlinear
        `activation` except the model's final layer.

    Cost: one forward pass per input.
    """
    _layers.check_model(model)
    if per not in ("channel", "neuron"):
        raise ValueError(f'`per` must be "channel" or "neuron". Received: per={per!r}')
    batch_size = _targets.check_positive_int(batch_size, "batch_size")
    x = _targets.as_batch(model, inputs)
    found = _activation_layers(model)
    if not found:
        raise ValueError(
            "`model` has no activation layer to inspect. "
            f"Received: model={model.name!r}"
        )
    fn = _alive_function(model, [layer for _, layer in found], per == "channel")
    alive = None
    for part in _targets.chunks(len(x), batch_size):
        now = [np.asarray(a) for a in fn(x[part])]
        alive = (
            now if alive is None else [a | b for a, b in zip(alive, now, strict=True)]
        )
    return {
        path: float(1 - a.mean()) for (path, _), a in zip(found, alive, strict=True)
    }
