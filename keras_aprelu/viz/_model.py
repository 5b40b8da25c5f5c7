"""The model, read once per call, before its inputs.

`read(model)` checks that `model` is a Keras model and reads what the rest
of a call needs to know about it without running it: the inputs it
declares (name, shape, and whether it takes them as floats), its data
format, and its number of classes. The inputs are then checked against
these `Facts` (`_inputs.read`), and the model runs once, on one sample, to
be inspected (`_layers.inspect`). Nothing below asks the model these
questions again.
"""

import dataclasses

import keras

from keras_aprelu.viz import _layers


@dataclasses.dataclass(frozen=True)
class Declared:
    """One input the model declares (a `keras.Input` of its graph)."""

    name: str | None
    shape: tuple  # batch first
    is_float: bool


@dataclasses.dataclass(frozen=True, eq=False)
class Facts:
    """What a call knows about its model before running it."""

    model: keras.Model
    declared: tuple  # of Declared; empty when the model declares none
    channels_first: bool
    num_classes: int | None  # for a (batch, classes) output, else None

    def declared_for(self, kind, keys):
        """The declared inputs in the order of the user's `keys` (by name,
        for a dict), or None when the model declares none."""
        if not self.declared:
            return None
        if kind != "dict":
            return list(self.declared)
        by_name = {d.name: d for d in self.declared}
        if not set(keys) <= set(by_name):
            return None
        return [by_name[key] for key in keys]


def _declared_inputs(model):
    try:
        tensors = list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model
        return ()
    return tuple(
        Declared(
            getattr(t, "name", None),
            tuple(t.shape),
            keras.backend.is_float_dtype(keras.backend.standardize_dtype(t.dtype)),
        )
        for t in tensors
    )


def _num_classes(model):
    try:
        shape = model.output_shape
    except (AttributeError, ValueError):
        return None
    if isinstance(shape, (list, dict)):
        return None
    return shape[-1] if len(shape) == 2 else None


def read(model):
    """The `Facts` of `model` (passed through if it is one already)."""
    if isinstance(model, Facts):
        return model
    _layers.check_model(model)
    return Facts(
        model=model,
        declared=_declared_inputs(model),
        channels_first=_layers.data_format(model) == "channels_first",
        num_classes=_num_classes(model),
    )
