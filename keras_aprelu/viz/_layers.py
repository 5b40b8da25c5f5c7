"""Finding layers in any Keras 3 model, and patching them for one computation.

Layers are named by their path from the model: `"conv2d"`, or
`"backbone/conv5"` inside a nested model, or
`"vit_backbone/vit_encoder/transformer_block_2"` for a sublayer that a
layer holds (a transformer encoder's blocks). Patches set an attribute on the
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
import weakref

import keras

from keras_aprelu.viz import _backend


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


def sublayers(layer):
    """The layers `layer` holds directly: a model's layers, or the
    sublayers a layer tracks (the blocks of a transformer encoder, which
    keeps them in a list)."""
    if isinstance(layer, keras.Model):
        held = layer.layers
    else:
        held = layer._flatten_layers(include_self=False, recursive=False)
    return [h for h in held if not isinstance(h, keras.layers.InputLayer)]


def walk_all(model, prefix=""):
    """Yields (path, layer) for every layer the model holds at any depth:
    `walk`'s, and the sublayers of layers, depth first. What a user may
    name; `walk` is what the model's own graph runs."""
    for layer in sublayers(model):
        path = prefix + layer.name
        yield path, layer
        yield from walk_all(layer, path + "/")


def path_of(model, layer):
    for path, candidate in walk_all(model):
        if candidate is layer:
            return path
    return None


def find_layer(model, layer, argument="layer"):
    """Resolves `layer` (a name, a path or a Layer) to (path, Layer).
    Errors name `argument`, the user's argument that held `layer`."""
    if isinstance(layer, keras.layers.Layer):
        path = path_of(model, layer)
        if path is None:
            raise ValueError(
                f"`{argument}` holds a layer that is not part of the model "
                f"{model.name!r}. "
                f"Received: {argument}={layer.name!r} ({type(layer).__name__})"
            )
        return path, layer
    if not isinstance(layer, str):
        raise TypeError(
            f"`{argument}` must hold a layer name, a path such as "
            f"'backbone/conv5', or a Layer. Received: {argument}={layer!r}"
        )
    layers = dict(walk_all(model))
    if layer in layers:
        return layer, layers[layer]
    by_name = [path for path in layers if path.rsplit("/", 1)[-1] == layer]
    # A bare name: unique among the model's own layers first (an APReLU's
    # inner Dense does not shadow the model's), then at any depth.
    own = {path for path, _ in walk(model)}
    graph = [path for path in by_name if path in own]
    if len(graph) == 1:
        return graph[0], layers[graph[0]]
    if len(by_name) == 1:
        return by_name[0], layers[by_name[0]]
    close = difflib.get_close_matches(layer, list(layers), n=5, cutoff=0.5)
    hint = f" Close names: {', '.join(close)}." if close else ""
    if len(by_name) > 1:
        hint = f" It names several layers; use a path: {', '.join(by_name)}."
    raise ValueError(
        f"`{argument}` names no layer of the model {model.name!r}.{hint} "
        f"Received: {argument}={layer!r}"
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
def recording(layers, store, on_value=None, inputs=False):
    """Records the output of each layer (its first input, with `inputs`)
    into `store[i]` while active.

    `on_value(value)`, if given, sees each value before it is used, and
    what it returns is used instead (`_backend.grad`'s tap, so that
    gradients with respect to the value can be taken).
    """
    with contextlib.ExitStack() as stack:
        for index, layer in enumerate(layers):

            def call(*args, _original=layer.call, _index=index, **kwargs):
                if inputs:
                    value = args[0] if args else kwargs.pop("inputs")
                    if on_value is not None:
                        value = on_value(value)
                    store[_index] = value
                    return _original(value, *args[1:], **kwargs)
                outputs = _original(*args, **kwargs)
                if on_value is not None:
                    outputs = on_value(outputs)
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
    input_shape: tuple | None  # of its first input
    source: int | None  # the first call whose output is that input


@dataclasses.dataclass(frozen=True)
class Inspection:
    calls: tuple  # of Call, in the order the layers ran
    final: keras.layers.Layer | None  # the layer whose output is the model's
    # path -> (input shape, output shape) of the first call of every layer
    # the model holds, at any depth (a transformer block inside an encoder
    # layer); the batch axis is the sample's, 1.
    shapes: dict = dataclasses.field(default_factory=dict)

    def shape_of(self, path, layer, of_input=False):
        """The shape of the output (with `of_input`, the first input) of
        the layer at `path`, or None if unknown (it did not run, or it is a
        nested model whose graph was not recorded)."""
        if path in self.shapes:
            return self.shapes[path][0 if of_input else 1]
        if isinstance(layer, keras.Model):
            try:
                tensor = layer.inputs[0] if of_input else layer.output
            except (AttributeError, ValueError, IndexError):
                return None
            return _shape(tensor)
        return None


# model -> Inspection; dies with the model. The values hold layers, never
# the model or a tensor.
_INSPECTIONS = weakref.WeakKeyDictionary()


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else None


def inspect(model, sample):
    """Runs `model` once on `sample` (a batch of one, in the structure the
    model takes), recording which layers run, in order, and which layer
    made each one's input. A model that was never called is built by this
    call, as `predict` would build it."""
    if model in _INSPECTIONS:
        return _INSPECTIONS[model]
    seen = []  # (path, layer, input, output), tensors held only here
    shapes = {}
    graph = {id(layer) for _, layer in walk(model)}
    with contextlib.ExitStack() as stack:
        patched_ids = set()
        for path, layer in walk_all(model):
            if isinstance(layer, keras.Model) or id(layer) in patched_ids:
                continue
            patched_ids.add(id(layer))

            def call(*args, _original=layer.call, _path=path, _layer=layer, **kw):
                outputs = _original(*args, **kw)
                given = args[0] if args else kw.get("inputs", kw.get("query"))
                shapes.setdefault(_path, (_shape(given), _shape(outputs)))
                if id(_layer) in graph:
                    seen.append((_path, _layer, given, outputs))
                return outputs

            stack.enter_context(patched(layer, "call", call))
        with _backend.explained_errors():
            outputs = model(sample, training=False)
    calls = []
    for path, layer, given, out in seen:
        source = next((i for i, item in enumerate(seen) if item[3] is given), None)
        calls.append(Call(path, layer, _shape(out), _shape(given), source))
    final = next(
        (layer for *_, layer, _, out in reversed(seen) if out is outputs), None
    )
    inspection = Inspection(calls=tuple(calls), final=final, shapes=shapes)
    _INSPECTIONS[model] = inspection
    return inspection


def inspection(model):
    """The `Inspection` of `model` (`inspect` must have run)."""
    return _INSPECTIONS[model]


def layers_that_ran(model):
    """(path, layer) of every layer call, in the order they ran (`inspect`
    must have run)."""
    return [(call.path, call.layer) for call in _INSPECTIONS[model].calls]


def final_layer(model):
    """The layer that produces the output of the model, or None if unknown
    (`inspect` must have run)."""
    inspection = _INSPECTIONS.get(model)
    return None if inspection is None else inspection.final
