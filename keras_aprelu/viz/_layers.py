"""Finding layers in any Keras 3 model, and patching them for one computation.

Layers are named by their path from the model: `"conv2d"`, or
`"backbone/conv5"` inside a nested model. Patches set an attribute on the
layer *instance* (never on its class) and are undone in `finally`, so the
user's model is exactly as it was after any call, including one that raised.
"""

import contextlib
import difflib
import weakref

import keras

SPATIAL_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)


def check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model` must be a Keras 3 `keras.Model` (Functional, Sequential or "
            f"subclassed). Received: model={type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            "`model` must be built: call it once on a batch, or give it an "
            f"Input. Received: model={model.name} (not built)"
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
        raise ValueError(
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


def has_spatial_output(layer):
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return False
    return len(shape) >= 3


def default_spatial_layer(model, extra_types=()):
    """The last layer with a spatial output, as Grad-CAM wants it."""
    chosen = None
    for path, layer in walk(model):
        if isinstance(layer, SPATIAL_TYPES + tuple(extra_types)):
            if not hasattr(layer, "output") or has_spatial_output(layer):
                chosen = (path, layer)
    if chosen is None:
        raise ValueError(
            "`model` has no layer with a spatial output (Conv, pooling or a "
            "keras_aprelu activation on a feature map), so Grad-CAM has "
            f"nothing to weigh. Received: model={model.name!r}"
        )
    return chosen


# Subclassed model -> the layer found to produce its output (or None).
_FINAL = weakref.WeakKeyDictionary()


def find_final_layer(model, sample):
    """Finds, by running it once on `sample`, the layer that produces the
    output of a subclassed model, and remembers it for `final_layer`."""
    if model in _FINAL or isinstance(model, keras.Sequential) or _is_functional(model):
        return
    calls = []
    with contextlib.ExitStack() as stack:
        for _, layer in walk(model):
            if isinstance(layer, keras.Model):
                continue

            def call(*args, _original=layer.call, _layer=layer, **kwargs):
                outputs = _original(*args, **kwargs)
                calls.append((_layer, outputs))
                return outputs

            stack.enter_context(patched(layer, "call", call))
        outputs = model(sample, training=False)
    _FINAL[model] = next(
        (layer for layer, out in reversed(calls) if out is outputs), None
    )


def final_layer(model):
    """The layer that produces the output of the model, or None if unknown.

    For a subclassed model, `find_final_layer` must have run first.
    """
    if not isinstance(model, keras.Sequential) and not _is_functional(model):
        return _FINAL.get(model)
    if isinstance(model, keras.Sequential):
        last = model.layers[-1] if model.layers else None
    elif _is_functional(model) and len(model.outputs) == 1:
        output = model.outputs[0]
        last = next(
            (layer for layer in reversed(model.layers) if _output_of(layer) is output),
            None,
        )
    else:
        return None
    if isinstance(last, keras.Model):
        return final_layer(last)
    return last


def _is_functional(model):
    try:
        return bool(model.outputs) and bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def _output_of(layer):
    try:
        return layer.output
    except (AttributeError, ValueError):
        return None


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
def recording(layers, store, *, watch=None):
    """Records the output of each layer into `store[i]` while active.

    With `watch` (a GradientTape), the outputs are watched so that gradients
    with respect to them can be taken.
    """
    with contextlib.ExitStack() as stack:
        for index, layer in enumerate(layers):
            original = layer.call

            def call(*args, _original=original, _index=index, **kwargs):
                outputs = _original(*args, **kwargs)
                if watch is not None:
                    watch.watch(outputs)
                store[_index] = outputs
                return outputs

            stack.enter_context(patched(layer, "call", call))
        yield store
