"""What every class activation map (CAM) shares.

A CAM variant is only its weighting. Most are a gradient rule, a function
`rule(features, grads) -> maps` from the layer's activations and the
gradient of the score with respect to them, both float32, channels last,
shape (batch, *spatial, channels), to maps of shape (batch, *spatial),
passed as `gradient(rule)`; Score-CAM weighs by forward passes instead
(`grad_cam.score_weighting`). Finding the layer, recording it, upsampling
the maps to the inputs and the output contract live here, once.
"""

import dataclasses
import logging

import keras
import numpy as np

from keras_aprelu.viz import _attention
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _grids
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _registry
from keras_aprelu.viz import _request
from keras_aprelu.viz import _scores

logger = logging.getLogger("keras_aprelu.viz")


@dataclasses.dataclass(frozen=True)
class FeatureMap:
    """Where a CAM reads its feature map: the output of `layer`, or (with
    `of_input`) its input, when no layer outputs that map (a residual sum
    made by an op, as in ConvNeXt, or a transformer block's input).
    `shape` and `grid`, set by `located`: the shape of what is read (on
    the inspection's sample), and how its tokens lie over the image
    (`_grids.grid_of`), or None for a map with the input's spatial axes."""

    path: str
    layer: keras.layers.Layer
    of_input: bool = False
    shape: tuple | None = None
    grid: _grids.TokenGrid | None = None

    def describe(self):
        side = "the input" if self.of_input else "the output"
        return f"{side} of layer {self.path!r}"


def resolve_layer(run, layer, token_grid=None):
    """The `FeatureMap` to weigh: the output of `layer`, or the default
    map, `located` (errors before any work)."""
    if layer is None:
        chosen = default_feature_map(
            run.model, run.data.spatial_shapes, run.layout.channels_first
        )
    else:
        chosen = FeatureMap(*_layers.find_layer(run.model, layer))
    return located(run, chosen, token_grid)


def located(run, feature_map, token_grid=None):
    """`feature_map` with the shape it reads, from the inspection, and the
    grid of its tokens over the request's inputs (`token_grid`, checked,
    or inferred)."""
    token_grid = _grids.check_token_grid(token_grid)
    shape = run.data.inspection.shape_of(
        feature_map.path, feature_map.layer, feature_map.of_input
    )
    grid = _grids.grid_of(
        shape, run.data.spatial_shapes, token_grid, feature_map.describe()
    )
    return dataclasses.replace(feature_map, shape=shape, grid=grid)


def default_feature_map(model, spatial_shapes, channels_first):
    """The feature map a CAM weighs by default: for a transformer, the
    input of its last block; else the last feature map before the pooling
    or flattening that leads to the head.

    A transformer's last block outputs its patch tokens to nothing but the
    final norm when the head reads the class token, so their gradient is
    zero there; the block's input is the last place where they reach the
    score (pytorch-grad-cam's advice). The blocks are found by their
    attention layers (`_attention.last_block`).

    A feature map is one tensor with as many spatial axes as an input (of
    `spatial_shapes`), at least one of them larger than 1, or tokens that
    lie on a grid over an image input (a Swin stage's, `_grids.grid_of`). The head
    starts at the last layer, in the order the layers ran, that turns a
    feature map into something that is not one (global pooling, Flatten).
    Its input is the map: read as the output of the first layer that made
    it (on ResNet50 `conv5_block3_out`, the block's output after its
    residual add and ReLU, not the last convolution inside the block; a
    Dropout in between passes the same map on), or as the input of the
    pooling itself when an op made it (ConvNeXt's residual sum). A model
    whose output is a feature map uses the last layer that outputs one, that
    the registry does not exclude (a spatial softmax is no feature map).
    """
    block = _attention.last_block(model)
    if block is not None:
        chosen = FeatureMap(*block, of_input=True)
        logger.info(
            "The CAM uses the input of the last transformer block, %r (%s).",
            chosen.path,
            type(chosen.layer).__name__,
        )
        return chosen
    inspection = _layers.inspection(model)
    first = channels_first
    spatial_ranks = {len(shape) for shape in spatial_shapes}

    def is_map(shape):
        if shape is None or len(shape) < 3:
            return False
        if len(shape) - 2 not in spatial_ranks:
            try:
                return _grids.grid_of(shape, spatial_shapes, None, "") is not None
            except ValueError:  # tokens, but on no grid
                return False
        spatial = shape[2:] if first else shape[1:-1]
        return any(d != 1 for d in spatial)

    chosen = None
    for call in reversed(inspection.calls):
        if is_map(call.input_shape) and not is_map(call.shape):
            if call.source is None:
                chosen = FeatureMap(call.path, call.layer, of_input=True)
            else:
                source = inspection.calls[call.source]
                chosen = FeatureMap(source.path, source.layer)
            break
    if chosen is None:
        for call in reversed(inspection.calls):
            found = _registry.lookup(call.path, call.layer)
            if is_map(call.shape) and (found is None or found.entry.cam):
                chosen = FeatureMap(call.path, call.layer)
                break
    if chosen is None:
        raise ValueError(
            "`model` has no layer whose output is a feature map with the "
            "spatial axes of its inputs, so a CAM has nothing to weigh; pass "
            f"`layer=`. Received: model={model.name!r}"
        )
    where = "the input of layer" if chosen.of_input else "layer"
    logger.info(
        "The CAM uses %s %r (%s).", where, chosen.path, type(chosen.layer).__name__
    )
    return chosen


def _features(store, feature_map, layout):
    """The recorded feature map, checked, float32, channels last, tokens
    over their grid."""
    path = feature_map.path
    if 0 not in store:
        raise ValueError(
            f"`layer` {path!r} was not called when the model ran, so "
            f"it has no activations to weigh. Received: layer={path!r}"
        )
    features = store[0]
    if not hasattr(features, "shape") or len(features.shape) < 3:
        raise ValueError(
            "`layer` must have one feature map as output, shape "
            "(batch, *spatial, channels), for a CAM. Received: "
            f"layer={path!r} with output "
            f"{getattr(features, 'shape', type(features).__name__)}"
        )
    return _grids.to_map(keras.ops.cast(features, "float32"), layout, feature_map.grid)


def gradient(rule):
    """The weighting of a gradient rule `rule(features, grads) -> maps`: one
    forward and one partial backward pass per input.

    The model's compiled function returns the features and their gradients,
    and the rule weighs them in a compiled function of its own, so that
    every gradient CAM of the same layer and targets traces the model once:
    on a keras.applications model a trace takes seconds, and a user
    comparing Grad-CAM, Grad-CAM++, HiResCAM and Layer-CAM pays it once.
    The second call per chunk costs 10 to 15 % on the MNIST benchmark
    (README, "Performance").
    """

    def maps_of(run, feature_map):
        # What the compiled function closes over must not hold the model:
        # `run` does (through its inputs), so only the plan is taken.
        plan, score_fn = run.plan, run.targets.score_fn
        layout = plan.layout
        found = feature_map.layer

        def build(model):
            def fn(xs, targets):
                def scored(xs, tap):
                    store = {}
                    with _layers.recording(
                        [found], store, tap, inputs=feature_map.of_input
                    ):
                        outputs = plan.forward(model, xs)
                    features = _features(store, feature_map, layout)
                    return _scores.score(outputs, targets, score_fn), features

                with plan.logits_applied():
                    _, features, _, tapped = _backend.grad(scored, xs, tap=True)
                # The last call's, as `store` keeps (a layer called twice);
                # `_features` raised if there was none.
                grads = keras.ops.cast(tapped[-1], "float32")
                return features, _grids.to_map(grads, layout, feature_map.grid)

            return fn

        key = (layout, id(found), feature_map.of_input, feature_map.grid)
        key += (plan.logits, run.targets.key)
        fn = _backend.compiled(run.model, ("cam", *key), build)
        # The rule holds no model; keyed with the layer, it sees one rank.
        weigh = _backend.compiled(
            run.model, ("cam rule", rule.__name__, *key), lambda _: rule
        )

        def features_and_gradients(start, xs):
            return fn(xs, run.targets.slice(start, start + len(xs[0])))

        def maps(start, xs):
            features, grads = features_and_gradients(start, xs)
            if start == 0 and feature_map.grid is not None:
                check_patch_gradient(grads, feature_map, run.model)
            return weigh(features, grads)

        # For `Request.pack`: the gradient the rule weighs, of one chunk.
        maps.gradient_of = lambda start, xs: features_and_gradients(start, xs)[1]
        return maps

    return maps_of


def features_function(run, feature_map):
    """The compiled feature map of a chunk, float32 and channels last."""
    found = feature_map.layer
    plan = run.plan
    layout = plan.layout

    def build(model):
        def fn(xs):
            store = {}
            with _layers.recording([found], store, inputs=feature_map.of_input):
                plan.forward(model, xs)
            return _features(store, feature_map, layout)

        return fn

    key = ("cam features", layout, id(found), feature_map.of_input, feature_map.grid)
    return _backend.compiled(run.model, key, build)


def cam(
    model,
    inputs,
    target,
    weighting,
    *,
    layer,
    token_grid,
    logits,
    normalize,
    batch_size,
    progress,
):
    """The maps of a CAM, upsampled to every input they fit.

    `weighting(run, feature_map)` returns the function that
    maps a chunk, `(start, xs) -> (chunk, *layer_spatial)` maps: `gradient`
    of a rule, or Score-CAM's forward weighting.

    Returns the maps in the structure of the inputs: for each input whose
    number of spatial axes is the layer's, the map upsampled to its spatial
    size; None for any other input (a model with an image and a vector).
    """
    run = _request.request(
        model,
        inputs,
        target,
        logits=logits,
        normalize=normalize,
        progress=progress,
        batch_size=batch_size,
    )
    layout = run.layout
    feature_map = resolve_layer(run, layer, token_grid)
    maps_of = weighting(run, feature_map)
    sizes = []

    def compute(start, xs):
        first = not sizes
        if first:
            sizes.extend(layout.spatial_shape(i, x.shape) for i, x in enumerate(xs))
        maps = maps_of(start, xs)
        if first:
            check_fits_an_input(maps.shape, sizes, feature_map.path)
        return [maps]

    (maps,) = run.run(run.batch_size, compute)
    gradient = None
    if hasattr(maps_of, "gradient_of"):
        what = feature_map.describe()
        gradient = (what, lambda xs: maps_of.gradient_of(0, xs))
    return run.pack(
        [
            upsample(maps, size) if len(size) == maps.ndim - 1 else None
            for size in sizes
        ],
        gradient=gradient,
    )


def check_fits_an_input(map_shape, sizes, path):
    """A CAM's maps, (batch, *layer_spatial), must have as many spatial axes
    as one input at least, to be upsampled onto it."""
    rank = len(map_shape) - 1
    if any(len(size) == rank for size in sizes):
        return
    ranks = " or ".join(str(r) for r in sorted({len(size) for size in sizes}))
    raise ValueError(
        f"The layer's maps have {rank} spatial axes and the inputs {ranks}, "
        "so a CAM cannot be drawn on any input: choose a layer whose output "
        f"keeps the input's spatial axes (`layer=`). Received: layer={path!r} "
        f"with maps of shape {tuple(map_shape)}"
    )


def check_patch_gradient(grads, feature_map, model):
    """Refuses a token layer whose patch tokens get no gradient of the
    score (on the first chunk): under a head that reads only the class
    token, the last block's output is one, and its CAM would be blank."""
    if np.any(_backend.to_numpy(grads)):
        return
    found = _attention.blocks(model)
    instead = "Name a layer before the patches are mixed into the class token"
    if found:
        instead = (
            "Leave `layer` unset (the default reads the input of the last "
            f"block, {found[-1][0]!r})"
        )
        if len(found) > 1:
            instead += f", name the block before it ({found[-2][0]!r})"
    raise ValueError(
        "No gradient of the score reaches the patch tokens of "
        f"{feature_map.describe()} ({feature_map.grid}): the head reads only "
        "the prefix (class) tokens, and no block after this layer mixes the "
        "patches into them (or the model cuts the path), so every map would "
        f"be blank. {instead}, or use `viz.gradient_rollout`. "
        f"Received: layer={feature_map.path!r}"
    )


def interpolation(old, new):
    """(low, high, frac) of a linear resize of one axis from `old` to `new`
    points, with half-pixel centres, as `tf.image.resize` does: point i of
    the result is `(1 - frac) * v[low] + frac * v[high]`."""
    centre = (np.arange(new) + 0.5) * (old / new) - 0.5
    centre = np.clip(centre, 0, old - 1)
    low = np.floor(centre).astype("int32")
    high = np.minimum(low + 1, old - 1).astype("int32")
    return low, high, (centre - low).astype("float32")


def upsample(maps, size):
    """Resizes `(batch, *spatial)` maps to `size` by (multi)linear
    interpolation with half-pixel centres, as `tf.image.resize` does."""
    maps = np.asarray(maps, dtype="float32")
    if maps.ndim - 1 != len(size):
        raise ValueError(
            f"The layer's maps have {maps.ndim - 1} spatial axes but the "
            f"inputs have {len(size)}. Received: maps.shape={maps.shape}, "
            f"size={tuple(size)}"
        )
    for axis, new in enumerate(size, start=1):
        old = maps.shape[axis]
        if old == new:
            continue
        low, high, frac = interpolation(old, new)
        shape = [1] * maps.ndim
        shape[axis] = new
        frac = frac.reshape(shape)
        maps = (
            np.take(maps, low, axis=axis) * (1 - frac)
            + np.take(maps, high, axis=axis) * frac
        )
    return maps
