"""Gradient methods at a layer's output instead of the inputs, as Captum's
Layer* methods: what a text model needs, whose token ids take no gradient
(`layer="token_embedding"`).

The layer's output `e` is recorded on the clean inputs; then every point
of the path (for integrated gradients, from the baseline `e0` to `e`; for
saliency and gradient x input, `e` alone) replaces the layer's output in a
forward pass, tapped, so that the score's gradient `g` with respect to it
comes back. The attribution per element is

- saliency: `|g|`, reduced over channels by the maximum;
- gradient x input: `e * g`, summed over channels;
- integrated gradients: `(e - e0) * mean_path(g)` (trapezoid rule),
  summed over channels: it sums to `F(x) - F(x with e0 at the layer)`.

The channel axis is the layer's (`_grids.channel_axis`): the hidden axis of
tokens, so that a text model's map is (batch, tokens). Positions where the
inputs' `padding_mask` is 0 get exactly 0.
"""

import numbers

import keras
import numpy as np

from keras_aprelu.viz import _backend
from keras_aprelu.viz import _cam
from keras_aprelu.viz import _grids
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _scores

# The key of keras-hub's text inputs whose 0 marks padding.
PADDING_MASK = "padding_mask"


def _function(run, found, axis, kind, steps, from_inputs):
    plan, score_fn = run.plan, run.targets.score_fn
    if kind == "integrated_gradients":
        weights = _inputs.trapezoid_weights(steps)
    else:  # the gradient at the layer's value alone
        weights = np.ones(1, "float32")
    points = len(weights)

    def output_of(model, xs):
        store = {}
        with _layers.recording([found], store):
            outputs = plan.forward(model, xs)
        return store[0], outputs

    def reduce(values):
        if axis is None:
            return values
        if kind == "saliency":
            return keras.ops.max(keras.ops.abs(values), axis=axis)
        return keras.ops.sum(values, axis=axis)

    def build(model):
        def fn(xs, baseline, targets):
            with plan.logits_applied():
                e, clean = output_of(model, xs)
                targets = _scores.chosen_targets(clean, targets)
                if kind != "integrated_gradients":
                    e0 = keras.ops.zeros_like(e)
                elif from_inputs:
                    e0, _ = output_of(model, baseline)
                else:
                    e0 = keras.ops.full_like(e, baseline)
            e = keras.ops.cast(e, "float32")
            e0 = keras.ops.cast(e0, "float32")
            path = e if points == 1 else _inputs.straight_path(e0, e, points)
            copies = [keras.ops.repeat(x, points, axis=0) for x in xs]

            def scored(copies, tap):
                with _layers.recording([found], {}, lambda _: tap(path)):
                    outputs = plan.forward(model, copies)
                chosen = keras.ops.repeat(targets, points)
                return _scores.score(outputs, chosen, score_fn), None

            with plan.applied():
                scores, _, _, tapped = _backend.grad(scored, copies, tap=True)
            mean_g = _inputs.path_mean(tapped[-1], weights)
            if kind == "saliency":
                values = mean_g
            elif kind == "gradient_x_input":
                values = e * mean_g
            else:
                values = (e - e0) * mean_g
            total = keras.ops.sum(
                keras.ops.reshape(values, [keras.ops.shape(e)[0], -1]), 1
            )
            scores = keras.ops.reshape(scores, [-1, points])
            gap = total - (scores[:, -1] - scores[:, 0])
            return reduce(values), gap

        return fn

    key = ("layer", kind, run.layout, id(found), axis, steps, from_inputs)
    key += (plan.modifier, plan.logits, run.targets.key)
    return _backend.compiled(run.model, key, build)


def attribute(run, layer, kind, *, steps=0, baseline=0.0):
    """(maps, gaps) of `kind` at the output of `layer` for every input:
    maps (batch, *positions), float32 and normalized as the request asks;
    gaps (batch,), integrated gradients' completeness gap."""
    output = _cam.located(run, _cam.FeatureMap(*_layers.find_layer(run.model, layer)))
    path, found, shape = output.path, output.layer, output.shape
    if shape is None or len(shape) < 2:
        raise ValueError(
            f"`layer` must output one tensor, (batch, ...), to attribute to. "
            f"Received: layer={path!r} with output {shape}"
        )
    axis = _grids.channel_axis(len(shape), run.layout, output.grid)
    from_inputs = kind == "integrated_gradients" and not isinstance(
        baseline, numbers.Real
    )
    fn = _function(run, found, axis, kind, steps, from_inputs)
    layout = run.layout

    def compute(start, xs):
        if from_inputs:
            base = _inputs.baselines(baseline, layout, xs, start)
        else:
            base = float(baseline)
        maps, gaps = fn(xs, base, run.targets.slice(start, start + len(xs[0])))
        return [_without_padding(maps, layout, xs), gaps]

    points = steps + 1 if kind == "integrated_gradients" else 1  # per input
    maps, gaps = run.run(max(1, run.batch_size // points), compute)

    def probe(xs):
        saliency = _function(run, found, axis, "saliency", 0, False)
        grads, _ = saliency(xs, 0.0, run.targets.slice(0, len(xs[0])))
        return _backend.to_numpy(grads)

    maps = run.pack_one(maps, gradient=(output.describe(), probe))
    return maps, gaps.astype("float32")


def _without_padding(maps, layout, xs):
    """`maps` with 0 where the inputs' `padding_mask` is 0, for a map over
    its positions."""
    maps = _backend.to_numpy(maps)
    if layout.kind != "dict" or PADDING_MASK not in layout.keys:
        return maps
    mask = xs[layout.keys.index(PADDING_MASK)]
    if mask.shape != maps.shape:
        return maps
    return np.where(mask != 0, maps, 0.0).astype("float32")
