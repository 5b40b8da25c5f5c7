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


def classes_function(model, layout, logits):
    """The compiled classes of a chunk: `targets`, with -1 replaced by the
    class predicted for the clean input."""

    def build(model):
        def fn(xs, targets):
            with logits_of(model, logits):
                outputs = model(layout.to_model(xs), training=False)
            return chosen_targets(outputs, targets)

        return fn

    return _backend.compiled(model, ("classes", layout, logits), build)


def final_squasher(model):
    """The model's final activation, as a `_registry.Found` in a 1-tuple,
    when it turns logits into probabilities (softmax, sigmoid); else ()."""
    last = _layers.final_layer(model)
    if last is None:
        return ()
    found = _registry.lookup(_layers.path_of(model, last) or last.name, last)
    return (found,) if found is not None and found.entry.squashes else ()


def _identity(inputs, *args, **kwargs):
    return inputs


@contextlib.contextmanager
def logits_of(model, enabled):
    """While active (and `enabled`), a final softmax or sigmoid of the model
    is the identity, so that scores are logits."""
    squasher = final_squasher(model) if enabled else ()
    if not squasher:
        yield
        return
    found = squasher[0]
    value = _identity if found.attribute == "call" else keras.activations.linear
    with _layers.patched(found.layer, found.attribute, value):
        yield
