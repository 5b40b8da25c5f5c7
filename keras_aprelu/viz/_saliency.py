"""Gradient saliency: vanilla, guided backprop, deconvnet, SmoothGrad, and
integrated gradients."""

import dataclasses

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _docs
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _layer_gradients
from keras_aprelu.viz import _request
from keras_aprelu.viz import _rules
from keras_aprelu.viz import _scores

__all__ = ["gradient_x_input", "integrated_gradients", "saliency"]


def input_gradients(model, plan, xs, targets, score_fn):
    """d score / d x for a batch (one gradient per input), under the rules of
    the plan's modifier; also returns the scores."""

    def scored(xs, _):
        return _scores.score(plan.forward(model, xs), targets, score_fn), None

    with plan.applied():
        scores, _, grads, _ = _backend.grad(scored, xs)
    return grads, scores


def input_gradient_probe(run):
    """`Request.pack`'s `gradient` for a method that differentiates with
    respect to the inputs: the plain gradient's magnitude (no guided or
    deconvnet rule, which may zero it on purpose)."""

    def probe(xs):
        plain = dataclasses.replace(
            run, plan=dataclasses.replace(run.plan, modifier=None, ruled=())
        )
        maps = _saliency_function(plain, 0)(xs, run.targets.slice(0, len(xs[0])))
        return np.stack([np.max(_backend.to_numpy(m)) for m in maps])

    return ("the inputs", probe)


def _saliency_function(run, samples, times_input=False):
    """The compiled maps of `saliency` (the gradient's largest magnitude over
    channels) or, with `times_input`, of `gradient_x_input` (the input times
    its gradient, summed over channels)."""
    # What the compiled function keeps must not hold the model: the plan.
    plan, score_fn = run.plan, run.targets.score_fn
    layout = plan.layout

    def build(model):
        def maps_of(xs, targets):
            grads, _ = input_gradients(model, plan, xs, targets, score_fn)
            if times_input:
                return [
                    layout.reduce_channels(i, x * g, "sum")
                    for i, (x, g) in enumerate(zip(xs, grads, strict=True))
                ]
            return [
                layout.reduce_channels(i, g, "max_abs") for i, g in enumerate(grads)
            ]

        def plain(xs, targets):
            return maps_of(xs, targets)

        def smooth(xs, targets, copies):
            # Every noisy copy is scored for the class predicted for the
            # clean input.
            with plan.logits_applied():
                clean = plan.forward(model, xs)
                targets = _scores.chosen_targets(clean, targets)
            maps = maps_of(copies, keras.ops.repeat(targets, samples))
            return [
                keras.ops.mean(
                    keras.ops.reshape(m, [-1, samples, *keras.ops.shape(m)[1:]]), 1
                )
                for m in maps
            ]

        return smooth if samples else plain

    key = ("saliency", layout, plan.modifier, plan.logits, run.targets.key)
    return _backend.compiled(run.model, (*key, samples, times_input), build)


_LAYER_NOTE = {"layer": _docs.LAYER_NOTES["attribution"]}


@_docs.shared_args(
    *_docs.METHOD_ARGS,
    "layer",
    notes={
        "batch_size": "With SmoothGrad, a pass holds "
        "`max(1, batch_size // smooth_samples)` inputs and all of their copies.",
        **_LAYER_NOTE,
    },
)
def saliency(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    modifier=None,
    smooth_samples=0,
    smooth_noise=0.2,
    logits=True,
    normalize=True,
    batch_size=64,
    seed=0,
    progress=False,
):
    """Gradient saliency maps (Simonyan et al., 2014), optionally guided,
    deconvnet-style or smoothed (SmoothGrad).

    The map of an input is the gradient of its score with respect to the
    input, reduced over the channel axis by the maximum absolute value, as
    in the paper.

    - `modifier="guided"` (Springenberg et al., 2015): every activation
      passes back only the positive part of the gradient it receives,
      multiplied by its own derivative: `f'(x) * relu(dy)`. This holds for
      every activation the registry gives a rule: ReLU (and ReLU6, as a
      layer, an `Activation` or any layer's `activation`), LeakyReLU,
      `keras.layers.PReLU`, and the PReLU, RReLU (fixed inference slope),
      APReLU (slopes held constant) and Maxout layers of keras_aprelu.
    - `modifier="deconvnet"` (Zeiler and Fergus, 2014): every activation
      passes back `relu(dy)` whatever its input; Maxout routes it to the
      channel that won the max.

    A nonlinearity with no rule (ELU, swish, tanh, ...) keeps its plain
    gradient, and one `UserWarning` names them.

    SmoothGrad (Smilkov et al., 2017) averages the maps of `smooth_samples`
    noisy copies of each input, with Gaussian noise of standard deviation
    `smooth_noise * (max(x) - min(x))`, per input. Every copy is scored for
    the class predicted for the clean input.

    The map does not depend on the sign of any layer's features.

    Args:
        modifier: `None`, `"guided"` or `"deconvnet"`.
        smooth_samples: Noisy copies per input for SmoothGrad; 0 turns it
            off. Defaults to 0.
        smooth_noise: Noise level relative to each input's value range.
            Defaults to 0.2.
        seed: Seed of the SmoothGrad noise, drawn in NumPy: input j of the
            batch (and model input i) gets the noise of
            `np.random.default_rng([seed, j, i])`, however the batch is
            chunked and on every backend, as in `noise_tunnel`. Defaults
            to 0.

    Returns:
        float32 array of shape `(batch, *spatial)`: the input's shape
        without its channel axis (a `(batch, features)` input keeps its
        shape). For a model with several inputs, a list (or dict, as the
        inputs were given) with one such map per input.

    Cost: one forward and one backward pass per input, times
    `smooth_samples` (plus one forward) with SmoothGrad.
    """
    modifier = _rules.check_modifier(modifier)
    samples = _args.check_int(smooth_samples, "smooth_samples", 0)
    smooth_noise = _args.check_number(smooth_noise, "smooth_noise", 0)
    seed = _args.check_int(seed, "seed", 0)
    if layer is not None and samples:
        raise ValueError(
            "`smooth_samples` adds noise to the inputs, and `layer` "
            "attributes to a layer's output: SmoothGrad at a layer is "
            "`viz.noise_tunnel` at the inputs. Received: "
            f"smooth_samples={smooth_samples!r} with layer={layer!r}"
        )
    run = _request.request(
        model,
        inputs,
        target,
        logits=logits,
        normalize=normalize,
        progress=progress,
        batch_size=batch_size,
        modifier=modifier,
        input_gradients=layer is None,
    )
    if layer is not None:
        return _layer_gradients.attribute(run, layer, "saliency")[0]
    fn = _saliency_function(run, samples)

    def compute(start, xs):
        chosen = run.targets.slice(start, start + len(xs[0]))
        if not samples:
            return fn(xs, chosen)
        copies = _inputs.noisy_copies(
            run.layout, xs, smooth_noise, start, seed, samples
        )
        return fn(xs, chosen, copies)

    step = max(1, run.batch_size // samples) if samples else run.batch_size
    return run.pack(run.run(step, compute), gradient=input_gradient_probe(run))


@_docs.shared_args(*_docs.METHOD_ARGS, "layer", notes=_LAYER_NOTE)
def gradient_x_input(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Gradient times input (Shrikumar et al., 2016): the input times the
    gradient of its score, summed over the channel axis.

    It is the first-order term of the score's change from an all-zero
    input, and equals integrated gradients with a zero baseline wherever
    the model is linear. It keeps its sign with `normalize=False`; it does
    not depend on the sign of any layer's features.

    Args:

    Returns:
        As `saliency`.

    Cost: one forward and one backward pass per input.
    """
    run = _request.request(
        model,
        inputs,
        target,
        logits=logits,
        normalize=normalize,
        progress=progress,
        batch_size=batch_size,
        input_gradients=layer is None,
    )
    if layer is not None:
        return _layer_gradients.attribute(run, layer, "gradient_x_input")[0]
    fn = _saliency_function(run, 0, times_input=True)

    def compute(start, xs):
        return fn(xs, run.targets.slice(start, start + len(xs[0])))

    return run.pack(
        run.run(run.batch_size, compute), gradient=input_gradient_probe(run)
    )


def _ig_function(run, steps):
    plan, score_fn = run.plan, run.targets.score_fn
    layout = plan.layout
    weights = _inputs.trapezoid_weights(steps)

    def build(model):
        def fn(xs, baselines, targets):
            with plan.logits_applied():
                clean = plan.forward(model, xs)
                targets = _scores.chosen_targets(clean, targets)
            paths = [
                _inputs.straight_path(base, x, steps + 1)
                for x, base in zip(xs, baselines, strict=True)
            ]
            grads, scores = input_gradients(
                model, plan, paths, keras.ops.repeat(targets, steps + 1), score_fn
            )
            maps, total = [], 0.0
            for i, (x, base, g) in enumerate(zip(xs, baselines, grads, strict=True)):
                attributions = (x - base) * _inputs.path_mean(g, weights)
                total = total + keras.ops.sum(
                    keras.ops.reshape(attributions, [keras.ops.shape(x)[0], -1]), 1
                )
                maps.append(layout.reduce_channels(i, attributions, "sum"))
            scores = keras.ops.reshape(scores, [-1, steps + 1])
            return [*maps, total - (scores[:, -1] - scores[:, 0])]

        return fn

    key = ("ig", layout, plan.logits, run.targets.key, steps)
    return _backend.compiled(run.model, key, build)


@_docs.shared_args(
    *_docs.METHOD_ARGS,
    "layer",
    notes={
        "target": "The predicted class is that of `x`, used along the whole path.",
        **_LAYER_NOTE,
    },
)
def integrated_gradients(
    model,
    inputs,
    target=None,
    *,
    layer=None,
    baseline=0.0,
    steps=32,
    logits=True,
    normalize=True,
    batch_size=64,
    return_gap=False,
    progress=False,
):
    """Integrated gradients (Sundararajan et al., 2017).

    The attribution of each input element is `(x - x') * g`, where `g` is
    the mean gradient of the score along the straight path from the
    baseline `x'` to `x`, taken with the trapezoid rule over `steps + 1`
    points (both ends included). By completeness, the attributions of an
    input sum to `F(x) - F(x')` up to the error of the rule; the gap is
    returned on request, and shrinks as `steps` grows. With several inputs,
    all move along the path together, and the attributions of all of them
    sum to the score's change.

    The map sums the attributions over the channel axis, so it keeps their
    sign and completeness with `normalize=False`. `normalize=True` shows
    their magnitude, `|map| / max|map|`, the usual display of integrated
    gradients. It does not depend on the sign of any layer's features.

    Args:
        baseline: `x'`: a number, or an array of the shape of one input or
            of the whole batch; for several inputs, also a list or dict
            with one of those per input. Defaults to 0.0 (a black image).
            With `layer`, a number is the layer's output everywhere (0.0:
            zeros, Captum's default), and arrays are inputs (baseline token
            ids, say) whose layer output is the baseline.
        steps: Intervals of the path. Defaults to 32.
        return_gap: Also return the completeness gap, shape (batch,): the
            sum of the attributions minus `F(x) - F(x')`. Defaults to
            `False`.

    Returns:
        As `saliency`, or `(maps, gap)` with `return_gap=True`.

    Cost: `steps + 1` forward and backward passes per input, plus one
    forward; a pass holds `max(1, batch_size // (steps + 1))` inputs.
    """
    steps = _args.check_positive_int(steps, "steps")
    return_gap = _args.check_bool(return_gap, "return_gap")
    run = _request.request(
        model,
        inputs,
        target,
        logits=logits,
        normalize=normalize,
        progress=progress,
        batch_size=batch_size,
        input_gradients=layer is None,
    )
    if layer is not None:
        maps, gaps = _layer_gradients.attribute(
            run, layer, "integrated_gradients", steps=steps, baseline=baseline
        )
        return (maps, gaps) if return_gap else maps
    layout = run.layout
    fn = _ig_function(run, steps)

    def compute(start, xs):
        bases = _inputs.baselines(baseline, layout, xs, start)
        return fn(xs, bases, run.targets.slice(start, start + len(xs[0])))

    *maps, gaps = run.run(max(1, run.batch_size // (steps + 1)), compute)
    maps = run.pack(maps, gradient=input_gradient_probe(run))
    if return_gap:
        return maps, gaps.astype("float32")
    return maps
