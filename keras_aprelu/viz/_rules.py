"""Guided-backprop and deconvnet rules, as `tf.custom_gradient` patches.

- guided: each activation's own backward rule, applied to the positive part
  of the upstream gradient: dx = f'(x) * relu(dy).
- deconvnet: the positive part of the upstream gradient alone, dx = relu(dy);
  for Maxout it goes to the channel that won the max.

The rules cover ReLU (the layer, `Activation("relu")` and `activation="relu"`
inside any layer), LeakyReLU, `keras.layers.PReLU` and the four layers of
keras_aprelu; APReLU's slopes count as constants. Any other nonlinearity met
on the way gets a warning that names it, never a silent plain gradient.
"""

import contextlib
import warnings

import keras
import tensorflow as tf

from keras_aprelu import activations as ka_activations
from keras_aprelu.layers import APReLU
from keras_aprelu.layers import Maxout
from keras_aprelu.layers import PReLU
from keras_aprelu.layers import RReLU
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _targets

MODIFIERS = (None, "guided", "deconvnet")

_RULE_FUNCTIONS = {"relu", "leaky_relu"}
_RULE_LAYERS = (
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    PReLU,
    RReLU,
    Maxout,
    APReLU,
)
_UNRULED_LAYERS = (
    keras.layers.ELU,
    keras.layers.Softmax,
)


def check_modifier(modifier):
    if modifier not in MODIFIERS:
        raise ValueError(
            '`modifier` must be None, "guided" or "deconvnet". '
            f"Received: modifier={modifier!r}"
        )
    return modifier


def with_rule(forward, mode, elementwise=True):
    """Wraps `forward(x)` so that its gradient follows `mode`."""

    def wrapped(x, *args, **kwargs):
        @tf.custom_gradient
        def f(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = forward(x, *args, **kwargs)

            def grad(dy, variables=None):
                positive = tf.nn.relu(dy)
                if mode == "deconvnet" and elementwise:
                    dx = positive
                else:
                    dx = tape.gradient(y, x, output_gradients=positive)
                if variables:
                    return dx, [tf.zeros_like(v) for v in variables]
                return dx

            return y, grad

        return f(x)

    return wrapped


def _aprelu_forward(layer):
    def forward(inputs, training=None, **kwargs):
        alpha = tf.stop_gradient(layer.slopes(inputs, training=False))
        return ka_activations.aprelu(inputs, alpha, axis=layer.axis)

    return forward


def _classify(model, skip):
    """Yields (path, layer, kind) with kind "layer", "activation" or "unruled"."""
    for path, layer in _layers.walk(model):
        if layer in skip or isinstance(layer, keras.Model):
            continue
        if isinstance(layer, _RULE_LAYERS):
            yield path, layer, "layer"
            continue
        if isinstance(layer, _UNRULED_LAYERS):
            yield f"{path} ({type(layer).__name__})", layer, "unruled"
            continue
        activation = getattr(layer, "activation", None)
        if activation is None or not callable(activation):
            continue
        name = _targets.function_name(activation)
        if name in _RULE_FUNCTIONS:
            yield path, layer, "activation"
        elif name not in _targets.LINEAR:
            yield f"{path} (activation {name!r})", layer, "unruled"


def warn_unruled(model, mode, *, skip=()):
    """Warns, naming them, about nonlinearities that `mode` has no rule for."""
    if mode is None:
        return
    unruled = [path for path, _, kind in _classify(model, skip) if kind == "unruled"]
    if unruled:
        warnings.warn(
            f"{mode} backprop has no rule for these activations, so their "
            f"plain gradient is used: {', '.join(unruled)}",
            UserWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def applied(model, mode, *, skip=()):
    """Applies the rules of `mode` to every activation in `model`.

    `skip` holds layers to leave alone (the model's final layer, whose
    softmax or sigmoid is the score's own). `warn_unruled` reports the rest.
    """
    if mode is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        for _, layer, kind in _classify(model, skip):
            if kind == "layer":
                forward = (
                    _aprelu_forward(layer) if isinstance(layer, APReLU) else layer.call
                )
                rule = with_rule(
                    forward, mode, elementwise=not isinstance(layer, Maxout)
                )
                stack.enter_context(_layers.patched(layer, "call", rule))
            elif kind == "activation":
                rule = with_rule(layer.activation, mode)
                stack.enter_context(_layers.patched(layer, "activation", rule))
        yield
