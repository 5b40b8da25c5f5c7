"""Finding layers in any Keras 3 model, and patching them for one computation.

Layers are named by their path from the model: `"conv2d"`, or
`"backbone/conv5"` inside a nested model. Patches set an attribute on the
layer *instance* (never on its class) and are undone in `finally`, so the
user's model is exactly as it was after any call, including one that raised.

What cannot be read from the layers alone (which layer produces the output
of a subclassed model, which layers run and in what order, and the shape
of their outputs) is found by running the model once, eagerly, on one
sample (`inspect`), and remembered for the life of the model.
"""

import contextlib
import dataclasses
import difflib
import logging
import weakref

import keras

from keras_aprelu.viz import _registry

logger = logging.getLogger("keras_aprelu.viz")


def check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be a Keras 3 `keras.Model` (Functional, Sequential or "
            f"subclassed). Received: model={type(model).__name__}"
        )


def walk(model, prefix=""):
    """Yields (path, layer) for every layer, depth first, nested models too."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = prefix + layer.name
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from walk(layer, path + "/")


def path_of(model, layer):
    for path, candidate in walk(model):
        if candidate is layer:
            return path
    return None


def find_layer(model, layer):
    """Resolves `layer` (a name, a path or a Layer) to (path, Layer)."""
    if isinstance(layer, keras.layers.Layer):
        path = path_of(model, layer)
        if path is None:
            raise ValueError(
                f"`layer` is not part of the model {model.name!r}. "
                f"Received: layer={layer.name!r} ({type(layer).__name__})"
            )
        return path, layer
    if not isinstance(layer, str):
        raise TypeError(
            "`layer` must be a layer name, a path such as 'backbone/conv5', or "
            f"a Layer. Received: layer={layer!r}"
        )
    layers = dict(walk(model))
    if layer in layers:
        return layer, layers[layer]
    by_name = [path for path in layers if path.rsplit("/", 1)[-1] == layer]
    if len(by_name) == 1:
        return by_name[0], layers[by_name[0]]
    close = difflib.get_close_matches(layer, list(layers), n=5, cutoff=0.5)
    hint = f" Close names: {', '.join(close)}." if close else ""
    if len(by_name) > 1:
        hint = f" It names several layers; use a path: {', '.join(by_name)}."
    raise ValueError(
        f"`layer` names no layer of the model {model.name!r}.{hint} "
        f"Received: layer={layer!r}"
    )


def data_format(model):
    """ "channels_first" or "channels_last": the model's, from its layers.

    The first layer that states a `data_format` (Conv, pooling, ...)
    decides; a model with none follows `keras.config.image_data_format()`.
    """
    for _, layer in walk(model):
        value = getattr(layer, "data_format", None)
        if value in ("channels_first", "channels_last"):
            return value
    return keras.config.image_data_format()


@contextlib.contextmanager
def patched(layer, name, value):
    """Sets `layer.name = value` on the instance, and restores it after."""
    own = vars(layer)
    had, old = name in own, own.get(name)
    object.__setattr__(layer, name, value)
    try:
        yield
    finally:
        if had:
            object.__setattr__(layer, name, old)
        else:
            object.__delattr__(layer, name)


@contextlib.contextmanager
def recording(layers, store, on_output=None):
    """Records the output of each layer into `store[i]` while active.

    `on_output(outputs)`, if given, sees each output first (a tape watches
    it, so that gradients with respect to it can be taken).
    """
    with contextlib.ExitStack() as stack:
        for index, layer in enumerate(layers):

            def call(*args, _original=layer.call, _index=index, **kwargs):
                outputs = _original(*args, **kwargs)
                if on_output is not None:
                    on_output(outputs)
                store[_index] = outputs
                return outputs

            stack.enter_context(patched(layer, "call", call))
        yield store


@dataclasses.dataclass(frozen=True)
class Call:
    """One layer call seen when the model ran on a sample."""

    path: str
    layer: keras.layers.Layer
    shape: tuple | None  # of its output; None when it is not one tensor
    passes: bool  # it returned its input as it was (Dropout in inference)


@dataclasses.dataclass(frozen=True)
class Inspection:
    calls: tuple  # of Call, in the order the layers ran
    final: keras.layers.Layer | None  # the layer whose output is the model's


# model -> Inspection; dies with the model. The values hold layers, never
# the model.
_INSPECTIONS = weakref.WeakKeyDictionary()


def inspect(model, sample):
    """Runs `model` once on `sample` (a batch of one, in the structure the
    model takes), recording which layers run, in order. A model that was
    never called is built by this call, as `predict` would build it."""
    if model in _INSPECTIONS:
        return _INSPECTIONS[model]
    calls = []
    with contextlib.ExitStack() as stack:
        for path, layer in walk(model):
            if isinstance(layer, keras.Model):
                continue

            def call(*args, _original=layer.call, _path=path, _layer=layer, **kw):
                outputs = _original(*args, **kw)
                given = args[0] if args else kw.get("inputs")
                calls.append((_path, _layer, outputs, outputs is given))
                return outputs

            stack.enter_context(patched(layer, "call", call))
        outputs = model(sample, training=False)
    final = next(
        (layer for _, layer, out, passes in reversed(calls) if out is outputs), None
    )
    inspection = Inspection(
        calls=tuple(
            Call(
                path, layer, tuple(out.shape) if hasattr(out, "shape") else None, passes
            )
            for path, layer, out, passes in calls
        ),
        final=final,
    )
    _INSPECTIONS[model] = inspection
    return inspection


def final_layer(model):
    """The layer that produces the output of the model, or None if unknown
    (`inspect` must have run)."""
    inspection = _INSPECTIONS.get(model)
    return None if inspection is None else inspection.final


def default_cam_layer(model, spatial_ranks):
    """The layer Grad-CAM weighs by default: the last feature map before the
    pooling or flattening that leads to the head.

    It is the last layer, in the order the layers ran, whose output is a
    feature map: one tensor with as many spatial axes as an input (any of
    `spatial_ranks`), at least one of them larger than 1, that the registry
    does not exclude (a spatial softmax is no feature map). A layer that
    passes its input on unchanged (Dropout in inference) is not chosen: the
    layer that made the map is. On ResNet50 this
    is `conv5_block3_out`, the block's output after its residual add and
    ReLU, not the last convolution inside the block.
    """
    inspection = _INSPECTIONS[model]
    for call in reversed(inspection.calls):
        if call.passes or call.shape is None:
            continue
        if len(call.shape) - 2 not in spatial_ranks:
            continue
        if len(call.shape) < 3 or all(d == 1 for d in _spatial(call.shape, model)):
            continue
        found = _registry.lookup(call.path, call.layer)
        if found is not None and not found.entry.cam:
            continue
        logger.info(
            "The CAM uses layer %r (%s), output shape %s.",
            call.path,
            type(call.layer).__name__,
            call.shape,
        )
        return call.path, call.layer
    raise ValueError(
        "`model` has no layer whose output is a feature map with the spatial "
        "axes of its inputs, so a CAM has nothing to weigh; pass "
        f"`layer=`. Received: model={model.name!r}"
    )


def _spatial(shape, model):
    if data_format(model) == "channels_first":
        return shape[2:]
    return shape[1:-1]
