"""Gradient saliency: vanilla, guided backprop, deconvnet, SmoothGrad, and
integrated gradients."""

import numbers

import numpy as np
import tensorflow as tf

from keras_aprelu.viz import _layers
from keras_aprelu.viz import _rules
from keras_aprelu.viz import _targets

__all__ = ["integrated_gradients", "saliency"]


def _input_gradients(model, x, targets, *, score_fn, modifier, logits, skip):
    """d score / d x for a batch, under the rules of `modifier`."""
    with _targets.logits_of(model, logits), _rules.applied(model, modifier, skip=skip):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = model(x, training=False)
            scores = _targets.score(outputs, targets, score_fn)
        return tape.gradient(scores, x), outputs, scores


def _saliency_function(model, modifier, logits, score_fn, samples):
    skip = _targets.final_squasher(model) if logits else ()

    def build():
        def plain(x, targets):
            grads, _, _ = _input_gradients(
                model,
                x,
                targets,
                score_fn=score_fn,
                modifier=modifier,
                logits=logits,
                skip=skip,
            )
            return _targets.reduce_channels(grads, "max_abs")

        def smooth(x, targets, sigma, seeds):
            # The target is the class predicted for the clean input, so every
            # noisy copy is scored for the same class.
            with _targets.logits_of(model, logits):
                targets = _targets.chosen_targets(model(x, training=False), targets)
            # One seed per input, so that the noise does not depend on how
            # the batch is chunked.
            noise = tf.map_fn(
                lambda seed: tf.random.stateless_normal(
                    tf.concat([[samples], tf.shape(x)[1:]], axis=0), seed
                ),
                seeds,
                fn_output_signature=tf.float32,
            )
            sigma = tf.reshape(sigma, [-1, 1] + [1] * (x.shape.rank - 1))
            copies = x[:, None] + sigma * noise
            copies = tf.reshape(copies, tf.concat([[-1], tf.shape(x)[1:]], axis=0))
            grads, _, _ = _input_gradients(
                model,
                copies,
                tf.repeat(targets, samples),
                score_fn=score_fn,
                modifier=modifier,
                logits=logits,
                skip=skip,
            )
            maps = _targets.reduce_channels(grads, "max_abs")
            shape = tf.concat([[-1, samples], tf.shape(maps)[1:]], axis=0)
            return tf.reduce_mean(tf.reshape(maps, shape), axis=1)

        return smooth if samples else plain

    key = ("saliency", modifier, logits, score_fn, samples)
    return _targets.compiled(model, key, build)


def saliency(
    model,
    inputs,
    target=None,
    *,
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
    input pixels, reduced over the channel axis by the maximum absolute
    value, as in the paper.

    - `modifier="guided"` (Springenberg et al., 2015): every activation
      passes back only the positive part of the gradient it receives,
      multiplied by its own derivative: `f'(x) * relu(dy)`. Unlike the
      peers, this holds for ReLU, LeakyReLU, `keras.layers.PReLU` and the
      PReLU, RReLU (fixed inference slope), APReLU (slopes held constant) and
      Maxout layers of keras_aprelu.
    - `modifier="deconvnet"` (Zeiler and Fergus, 2014): every activation
      passes back `relu(dy)` whatever its input; Maxout routes it to the
      channel that won the max.

    A nonlinearity with no rule (ELU, tanh, ...) keeps its plain gradient
    and triggers a `UserWarning` that names it.

    SmoothGrad (Smilkov et al., 2017) averages the maps of `smooth_samples`
    noisy copies of each input, with Gaussian noise of standard deviation
    `smooth_noise * (max(x) - min(x))`, per input. Every copy is scored for
    the class predicted for the clean input.

    Args:
        model: A built Keras 3 model with one input: Functional, Sequential,
            nested or subclassed.
        inputs: A batch, NumPy array or tensor, channels last.
        target: `None` (the predicted class), an int (one class for every
            input), a sequence of ints (one per input), or a callable
            `score(outputs) -> (batch,)` for any other objective.
        modifier: `None`, `"guided"` or `"deconvnet"`.
        smooth_samples: Noisy copies per input for SmoothGrad; 0 turns it
            off. Defaults to 0.
        smooth_noise: Noise level relative to each input's value range.
            Defaults to 0.2.
        logits: Score the pre-activation logits when the model ends in
            softmax or sigmoid. Defaults to `True`.
        normalize: Divide each map's magnitude by its largest, so that it
            lies in [0, 1] with 0 meaning no attribution. Signed maps
            (integrated gradients, occlusion) then show the magnitude;
            `False` returns the raw, signed values. Defaults to `True`.
        batch_size: Samples per pass. With SmoothGrad, a pass holds
            `max(1, batch_size // smooth_samples)` inputs and all of their
            copies. Defaults to 64.
        seed: Seed of the SmoothGrad noise; input i of the batch gets the
            noise of (seed, i), however the batch is chunked. Defaults to 0.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        float32 array of shape `(batch, *spatial)`; rank-2 inputs keep
        their shape.

    Cost: one forward and one backward pass per input, times
    `smooth_samples` (plus one forward) with SmoothGrad.
    """
    _check_common(model)
    modifier = _rules.check_modifier(modifier)
    samples = _check_count(smooth_samples, "smooth_samples")
    if not isinstance(smooth_noise, numbers.Real) or not smooth_noise >= 0:
        raise ValueError(
            "`smooth_noise` must be a number >= 0. "
            f"Received: smooth_noise={smooth_noise!r}"
        )
    logits = _targets.check_bool(logits, "logits")
    batch_size = _targets.check_positive_int(batch_size, "batch_size")
    x = _targets.as_batch(model, inputs)
    targets, score_fn = _targets.targets_for(
        target, len(x), _targets.num_classes(model)
    )
    _rules.warn_unruled(
        model, modifier, skip=_targets.final_squasher(model) if logits else ()
    )
    fn = _saliency_function(model, modifier, logits, score_fn, samples)
    step = max(1, batch_size // samples) if samples else batch_size
    maps = []
    for part in _targets.chunks(len(x), step, progress):
        if samples:
            span = x[part].reshape(len(x[part]), -1)
            sigma = smooth_noise * (span.max(axis=1) - span.min(axis=1))
            index = np.arange(part.start, part.stop)
            seeds = np.stack([np.full_like(index, seed), index], axis=1)
            maps.append(
                fn(
                    x[part],
                    targets[part],
                    sigma.astype("float32"),
                    seeds.astype("int32"),
                )
            )
        else:
            maps.append(fn(x[part], targets[part]))
    return _targets.finish(np.concatenate(maps), normalize)


def _ig_function(model, logits, score_fn, steps):
    # Trapezoid rule over steps + 1 points, alpha = 0, 1/steps, ..., 1.
    weights = np.full(steps + 1, 1.0 / steps, "float32")
    weights[[0, -1]] /= 2

    def build():
        def fn(x, baseline, targets):
            alphas = tf.reshape(
                tf.linspace(0.0, 1.0, steps + 1), [1, -1] + [1] * (x.shape.rank - 1)
            )
            path = baseline[:, None] + alphas * (x - baseline)[:, None]
            path = tf.reshape(path, tf.concat([[-1], tf.shape(x)[1:]], axis=0))
            with _targets.logits_of(model, logits):
                targets = _targets.chosen_targets(model(x, training=False), targets)
            grads, _, scores = _input_gradients(
                model,
                path,
                tf.repeat(targets, steps + 1),
                score_fn=score_fn,
                modifier=None,
                logits=logits,
                skip=(),
            )
            shape = tf.concat([[-1, steps + 1], tf.shape(x)[1:]], axis=0)
            grads = tf.reshape(grads, shape)
            w = tf.reshape(weights, [1, -1] + [1] * (x.shape.rank - 1))
            attributions = (x - baseline) * tf.reduce_sum(w * grads, axis=1)
            scores = tf.reshape(scores, [-1, steps + 1])
            gap = tf.reduce_sum(
                tf.reshape(attributions, [tf.shape(x)[0], -1]), axis=1
            ) - (scores[:, -1] - scores[:, 0])
            return _targets.reduce_channels(attributions, "sum"), gap

        return fn

    return _targets.compiled(model, ("ig", logits, score_fn, steps), build)


def integrated_gradients(
    model,
    inputs,
    target=None,
    *,
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
    returned on request, and shrinks as `steps` grows.

    The map sums the attributions over the channel axis, so it keeps their
    sign and completeness with `normalize=False`. `normalize=True` shows
    their magnitude, `|map| / max|map|`, the usual display of integrated
    gradients.

    Args:
        model, inputs, target, logits, normalize, batch_size, progress: As
            in `saliency`. The predicted class is that of `x`, used along
            the whole path.
        baseline: `x'`: a number, or an array of the shape of one input or
            of the whole batch. Defaults to 0.0 (a black image).
        steps: Intervals of the path. Defaults to 32.
        return_gap: Also return the completeness gap, shape (batch,): the
            sum of the attributions minus `F(x) - F(x')`. Defaults to
            `False`.

    Returns:
        float32 array of shape `(batch, *spatial)`, or `(maps, gap)` with
        `return_gap=True`.

    Cost: `steps + 1` forward and backward passes per input, plus one
    forward; a pass holds `max(1, batch_size // (steps + 1))` inputs.
    """
    _check_common(model)
    steps = _targets.check_positive_int(steps, "steps")
    logits = _targets.check_bool(logits, "logits")
    return_gap = _targets.check_bool(return_gap, "return_gap")
    batch_size = _targets.check_positive_int(batch_size, "batch_size")
    x = _targets.as_batch(model, inputs)
    base = _targets.baseline_for(baseline, x)
    targets, score_fn = _targets.targets_for(
        target, len(x), _targets.num_classes(model)
    )
    fn = _ig_function(model, logits, score_fn, steps)
    maps, gaps = [], []
    for part in _targets.chunks(len(x), max(1, batch_size // (steps + 1)), progress):
        m, g = fn(x[part], base[part], targets[part])
        maps.append(m)
        gaps.append(g)
    maps = _targets.finish(np.concatenate(maps), normalize)
    if return_gap:
        return maps, np.concatenate(gaps).astype("float32")
    return maps


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0. Received: {name}={value!r}")
    return int(value)


def _check_common(model):
    _layers.check_model(model)
