"""The score whose gradient (or drop) every method measures, in
`keras.ops`, for use inside compiled functions."""

import contextlib

import keras

from keras_aprelu.viz import _backend
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _registry


def score(outputs, targets, score_fn):
    """The per-sample score: `score_fn(outputs)`, or the logit of the class
    in `targets` (-1: the predicted class) of a (batch, classes) output."""
    if score_fn is not None:
        value = score_fn(outputs)
        if len(getattr(value, "shape", ())) != 1:
            raise ValueError(
                "A callable `target` must return one score per input, shape "
                "(batch,). Received: a score of shape "
                f"{tuple(getattr(value, 'shape', ()))}"
            )
        return keras.ops.cast(value, "float32")
    if isinstance(outputs, (list, tuple, dict)) or len(outputs.shape) != 2:
        raise ValueError(
            "An int or None `target` picks a class of a (batch, classes) "
            "output; for other outputs pass a callable "
            "`target=lambda outputs: ...` returning shape (batch,). Received: "
            "a model output of type/shape "
            f"{getattr(outputs, 'shape', type(outputs).__name__)}"
        )
    chosen = chosen_targets(outputs, targets)
    picked = keras.ops.take_along_axis(outputs, chosen[:, None], axis=1)
    return keras.ops.cast(picked[:, 0], "float32")


def chosen_targets(outputs, targets):
    """`targets`, with -1 replaced by the class predicted in `outputs`."""
    if isinstance(outputs, (list, tuple, dict)) or len(outputs.shape) != 2:
        return targets
    predicted = keras.ops.cast(keras.ops.argmax(outputs, axis=-1), "int32")
    return keras.ops.where(targets < 0, predicted, targets)


def classes_function(model, plan):
    """The compiled classes of a chunk: `targets`, with -1 replaced by the
    class predicted for the clean input."""

    def build(model):
        def fn(xs, targets):
            with plan.logits_applied():
                outputs = plan.forward(model, xs)
            return chosen_targets(outputs, targets)

        return fn

    key = ("classes", plan.layout, plan.logits)
    return _backend.compiled(model, key, build)


def final_squasher(inspection):
    """The model's final activation, as a `_registry.Found`, when it turns
    logits into probabilities (softmax, sigmoid); else None. Read from the
    model's `_layers.Inspection`."""
    last = inspection.final
    if last is None:
        return None
    path = next((c.path for c in inspection.calls if c.layer is last), last.name)
    found = _registry.lookup(path, last)
    return found if found is not None and found.entry.squashes else None


def _identity(inputs, *args, **kwargs):
    return inputs


@contextlib.contextmanager
def bypassed(found):
    """While active, the activation `found` (a `_registry.Found`) is the
    identity."""
    value = _identity if found.attribute == "call" else keras.activations.linear
    with _layers.patched(found.layer, found.attribute, value):
        yield
