"""What viz knows about each activation, in one place.

Every activation layer of keras_aprelu and of Keras, and every Keras
activation function, has one entry here (a test walks them all). An entry
says:

- `rule`: how guided backprop and deconvnet pass through it.
  `"elementwise"`: guided gives f'(x) * relu(dy), deconvnet relu(dy).
  `"routed"`: not elementwise (Maxout); both send relu(dy) through the
  layer's own backward, so it reaches the channel that won the max.
  `None`: no rule; the plain gradient is used and the user is warned.
- `cam`: whether its output can be the feature map a CAM weighs (a softmax
  is a distribution, not a feature map).
- `dead`: how `dead_units` counts a unit as alive: `"positive"` (output >
  0, the identity part of a ReLU-like function), `"nonzero"` (output != 0,
  for the shrink functions), or `None` when the idea does not apply (an
  output that is always positive, such as sigmoid's).
- `squashes`: it turns logits into probabilities (softmax, sigmoid); with
  `logits=True`, a model that ends in it is scored before it.
- `forward`: for a layer, the call used under a rule when it is not the
  layer's own (APReLU's, with its slopes held constant).
- `form`: what LRP and DeepLIFT (`_relevance`) take it for:
  `"elementwise"` (one output per input value: LRP passes relevance
  through, DeepLIFT rescales by dy/dx), `"max"` (the output is the largest
  of a group, Maxout: winner-takes-all, DeepLIFT's cross-max), or `None`
  (neither: a softmax inside the model, which has no rule).

Adding an activation means adding one entry below.
"""

import dataclasses

import keras

from keras_aprelu import activations as ka_activations
from keras_aprelu.layers import APReLU
from keras_aprelu.layers import Maxout
from keras_aprelu.layers import PReLU
from keras_aprelu.layers import RReLU
from keras_aprelu.viz import _layers

RULES = ("elementwise", "routed", None)


@dataclasses.dataclass(frozen=True)
class Entry:
    rule: str | None = None
    cam: bool = True
    dead: str | None = "positive"
    squashes: bool = False
    forward: object = None  # layer -> callable(inputs, **kwargs)
    form: str | None = "elementwise"


def _aprelu_forward(layer):
    def forward(inputs, training=None, **kwargs):
        alpha = keras.ops.stop_gradient(layer.slopes(inputs, training=False))
        return ka_activations.aprelu(inputs, alpha, axis=layer.axis)

    return forward


_RELU_LIKE = Entry(rule="elementwise")
_SMOOTH = Entry()  # no guided rule; alive where positive
_POSITIVE_OUTPUT = Entry(dead=None)  # always > 0 (or < 0): never "dead"
_DISTRIBUTION = Entry(cam=False, dead=None, form=None)

LAYERS = {
    APReLU: Entry(rule="elementwise", forward=_aprelu_forward),
    PReLU: _RELU_LIKE,
    RReLU: _RELU_LIKE,
    Maxout: Entry(rule="routed", form="max"),
    keras.layers.ReLU: _RELU_LIKE,
    keras.layers.LeakyReLU: _RELU_LIKE,
    keras.layers.PReLU: _RELU_LIKE,
    keras.layers.ELU: _SMOOTH,
    keras.layers.Softmax: Entry(cam=False, dead=None, squashes=True, form=None),
    # keras.layers.Activation is looked up by its function, below.
}

# By the function's __name__, so that keras.activations.relu6,
# Activation("relu6") and tf.nn.relu6 all find the same entry.
FUNCTIONS = {
    "linear": None,  # not an activation: nothing to do
    "relu": _RELU_LIKE,
    "relu6": _RELU_LIKE,
    "leaky_relu": _RELU_LIKE,
    "elu": _SMOOTH,
    "selu": _SMOOTH,
    "celu": _SMOOTH,
    "gelu": _SMOOTH,
    "silu": _SMOOTH,  # also keras.activations.swish
    "hard_silu": _SMOOTH,  # also hard_swish
    "mish": _SMOOTH,
    "glu": Entry(form=None),  # halves the channels: not elementwise
    "tanh": _SMOOTH,
    "softsign": _SMOOTH,
    "hard_tanh": _SMOOTH,
    "hard_sigmoid": _SMOOTH,  # 0 below -3: can die
    "sparse_sigmoid": _SMOOTH,  # 0 below -1: can die
    "sparse_plus": _SMOOTH,  # 0 below -1: can die
    "threshold": _SMOOTH,
    "hard_shrink": Entry(dead="nonzero"),
    "soft_shrink": Entry(dead="nonzero"),
    "tanh_shrink": Entry(dead="nonzero"),
    "sigmoid": Entry(dead=None, squashes=True),
    "softplus": _POSITIVE_OUTPUT,
    "squareplus": _POSITIVE_OUTPUT,
    "exponential": _POSITIVE_OUTPUT,
    "log_sigmoid": _POSITIVE_OUTPUT,  # always < 0
    "softmax": Entry(cam=False, dead=None, squashes=True, form=None),
    "log_softmax": _DISTRIBUTION,
    "sparsemax": _DISTRIBUTION,
}
_UNKNOWN_FUNCTION = _SMOOTH  # a user's own function: no rule, counted


def function_name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


@dataclasses.dataclass(frozen=True)
class Found:
    """An activation in a model: where it is and what the registry says."""

    path: str
    layer: keras.layers.Layer
    attribute: str  # what a rule patches: "call" (found by type) or "activation"
    name: str  # the layer's type, or the activation function's name
    entry: Entry


def lookup(path, layer):
    """The activation of `layer`, as a `Found`, or None if it has none.

    An activation layer is found by its type (a subclass by its nearest
    registered base); any other layer by its `activation` attribute.
    """
    for cls in type(layer).__mro__:
        if cls in LAYERS:
            return Found(path, layer, "call", cls.__name__, LAYERS[cls])
    activation = getattr(layer, "activation", None)
    if activation is None or not callable(activation):
        return None
    name = function_name(activation)
    entry = FUNCTIONS.get(name, _UNKNOWN_FUNCTION)
    if entry is None:
        return None
    return Found(path, layer, "activation", name, entry)


def activations(model):
    """Every activation of `model` (nested models included), in order."""
    found = []
    for path, layer in _layers.walk(model):
        if isinstance(layer, keras.Model):
            continue
        item = lookup(path, layer)
        if item is not None:
            found.append(item)
    return found
