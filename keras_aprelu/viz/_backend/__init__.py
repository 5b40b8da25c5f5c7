"""The one place where viz meets a Keras backend.

viz is written in `keras.ops` and NumPy. What `keras.ops` cannot say (how
to compile a function, how to take a gradient with respect to the inputs or
to a value recorded inside the model, a custom gradient, a sequential
map) is one small interface, implemented once per backend in
`tensorflow.py`, `jax.py` and `torch.py`, chosen once from
`keras.config.backend()`, as keras/src/backend/ is laid out. (Noise is
drawn in NumPy, `_inputs.noisy_copies`, so that a seed gives the same
maps on every backend.) A fourth backend is one new module with the same
functions:

- `compile(function, model_ref)`: a callable running `function(*args)`
  compiled where the backend compiles, always with the current weights of
  the model that `model_ref()` returns;
- `grad(fn, args, tap=False)`: `fn(args, tap) -> (scores, aux)`, `scores`
  of shape (batch,); returns `(scores, aux, grads, tapped)`: the gradients
  of `sum(scores)` with respect to each of `args` (zeros where
  unconnected), and an empty `tapped`; or, with `tap=True`, `grads` None
  and `tapped` the gradients with respect to every value that `fn` passed
  through `tap(value)`, in that order (a CAM's layer, each block's
  attention), the backward pass going no further down than they;
- `with_rule(forward, mode, elementwise)`: `forward` with the guided or
  deconvnet gradient;
- `map_fn(fn, elements, dtype, sequential)`;
- `explained_errors()`: a context that turns the backend's platform errors
  into messages a user can act on;
- `runs_channels_first()`: whether channels_first convolutions run here.

The compiled functions belong to their model without keeping it alive: the
cache is keyed weakly by the model, the traced Python functions reach the
model only through a weak reference, and each model keeps at most
`MAX_FUNCTIONS_PER_MODEL` of them (least recently used first out).
"""

import collections
import functools
import importlib
import sys
import types
import weakref

import keras
import numpy as np

_NAME = keras.config.backend()
_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
if _NAME not in _MODULES:
    raise ImportError(
        "keras_aprelu.viz runs on the TensorFlow, JAX and PyTorch backends. "
        f"Received: backend={_NAME!r}"
    )
backend = importlib.import_module(f"keras_aprelu.viz._backend.{_MODULES[_NAME]}")

grad = backend.grad
with_rule = backend.with_rule
map_fn = backend.map_fn
explained_errors = backend.explained_errors
runs_channels_first = backend.runs_channels_first

MAX_FUNCTIONS_PER_MODEL = 32

# model -> OrderedDict(configuration key -> compiled function); dies with
# the model.
_FUNCTIONS = weakref.WeakKeyDictionary()


def compiled(model, key, build):
    """The compiled function of `model` for the configuration `key`.

    `build(model)` returns the Python function to compile. It gets the model
    as an argument, at trace time, so that nothing it closes over needs to
    hold the model: what `build` closes over must not be the model, nor
    anything that holds it (the `_inputs.Inputs` or `Request` of a call).
    tests/viz/test_real_models.py frees models after every method.
    """
    per_model = _FUNCTIONS.setdefault(model, collections.OrderedDict())
    if key in per_model:
        per_model.move_to_end(key)
        return per_model[key]
    ref = weakref.ref(model)

    def traced(*args):
        return build(ref())(*args)

    # TensorFlow counts retracings per code object, so the closures of
    # several models would look like one function traced again and again
    # and log a misleading warning. A partial is its own key.
    per_model[key] = backend.compile(functools.partial(traced), ref)
    while len(per_model) > MAX_FUNCTIONS_PER_MODEL:
        per_model.popitem(last=False)
    return per_model[key]


def functions_of(model):
    """The compiled functions cached for `model`, oldest first (for tests)."""
    return dict(_FUNCTIONS.get(model, {}))


def is_dataset(value):
    """Whether `value` is a `tf.data.Dataset`. Only a user who imported
    TensorFlow can have one, so TensorFlow is never imported to ask."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(value, tf.data.Dataset)


def to_numpy(value):
    """A backend tensor (or a TensorFlow one, from a dataset) as NumPy."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # a torch tensor, perhaps requiring grad
        return value.detach().cpu().numpy()
    if hasattr(value, "numpy"):  # a TensorFlow tensor
        return value.numpy()
    return keras.ops.convert_to_numpy(value)


class _ById:
    """A cache-key part that compares by identity (for unhashable values)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _ById) and other.value is self.value

    def __hash__(self):
        return id(self.value)


def _part(value):
    try:
        hash(value)
    except TypeError:
        return _ById(value)
    return value


def callable_key(fn):
    """A cache key for a user's callable that a new lambda of the same code
    and the same captured values shares, so that it is not traced again.

    Two functions with the same code object, defaults and closure values
    compute the same thing (unless they read a global that changed in
    between). Other callables are keyed by identity.
    """
    if fn is None:
        return None
    if isinstance(fn, types.FunctionType):
        cells = tuple(_part(cell.cell_contents) for cell in fn.__closure__ or ())
        defaults = tuple(_part(v) for v in fn.__defaults__ or ())
        kwdefaults = tuple(
            (k, _part(v)) for k, v in sorted((fn.__kwdefaults__ or {}).items())
        )
        return ("function", fn.__code__, cells, defaults, kwdefaults)
    return ("callable", _part(fn))
