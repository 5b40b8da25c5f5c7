"""Faithfulness metrics: which map to believe.

`deletion` and `insertion` (Petsiuk et al., 2018) ask whether the positions
a map ranks highest are the ones the model needs: removing them first
should make the score fall fast (a low deletion area), and restoring them
first should make it rise fast (a high insertion area).
"""

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _masked
from keras_aprelu.viz import _scores
from keras_aprelu.viz import _tf

__all__ = ["deletion", "insertion"]


def _curve_function(model, layout, steps, insert, size, targets):
    score_fn = targets.score_fn

    def build(model):
        def fn(xs, baseline, ranks, counts, targets):
            # The model's output as it is (probabilities for a softmax
            # model), for the class predicted on the clean input.
            targets = _scores.chosen_targets(
                model(layout.to_model(xs), training=False), targets
            )
            spatial = len(ranks.shape) - 1

            def mask_of(which, where):
                # Positions taken from the baseline at step `where`: the top
                # counts[where] (deletion), or all but those (insertion).
                rank = keras.ops.take(ranks, which, axis=0)
                count = keras.ops.take(counts, where, axis=0)
                top = rank < keras.ops.reshape(count, [-1] + [1] * spatial)
                return keras.ops.logical_not(top) if insert else top

            return _masked.scores(
                model,
                layout,
                0,
                xs,
                baseline,
                steps + 1,
                mask_of,
                targets,
                size=size,
                score_fn=score_fn,
            )

        return fn

    key = ("insertion" if insert else "deletion", layout, steps, size, targets.key)
    return _tf.compiled(model, key, build)


def _ranks(maps):
    """The rank of every position of each map: 0 for the largest; ties go
    in position order (row-major)."""
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks.reshape(maps.shape).astype("int32")


def _curves(
    insert,
    model,
    inputs,
    maps,
    target,
    steps,
    baseline,
    batch_size,
    return_curves,
    progress,
):
    steps = _args.check_positive_int(steps, "steps")
    return_curves = _args.check_bool(return_curves, "return_curves")
    run = _inputs.request(
        model,
        inputs,
        target,
        logits=False,
        normalize=False,
        progress=progress,
        batch_size=batch_size,
    )
    layout = run.data.layout
    if layout.kind != "array":
        raise ValueError(
            "`inputs` must be one array: deletion and insertion rank the "
            "positions of a single input. Received: inputs with "
            f"{len(layout.keys)} entries"
        )
    maps = np.asarray(maps, "float32") if _is_numeric(maps) else None
    if maps is None or not np.isfinite(maps).all():
        raise ValueError(
            "`maps` must be a finite numeric array of shape (batch, *spatial). "
            f"Received: maps={type(maps).__name__ if maps is None else 'non-finite'}"
        )
    fn = _curve_function(model, layout, steps, insert, run.batch_size, run.targets)

    def compute(start, xs):
        count = len(xs[0])
        spatial = layout.spatial_shape(0, xs[0].shape)
        part = maps[start : start + count]
        if part.shape != (count, *spatial):
            raise ValueError(
                "`maps` must hold one map per input, of the inputs' spatial "
                f"shape (batch, {', '.join(map(str, spatial))}). "
                f"Received: maps.shape={maps.shape}"
            )
        positions = int(np.prod(spatial))
        counts = np.rint(np.arange(steps + 1) * positions / steps).astype("int32")
        (base,) = _inputs.baselines(baseline, layout, xs, start)
        chosen = run.targets.slice(start, start + count)
        return [fn(xs, base, _ranks(part), counts, chosen)]

    # Chunks of batch_size inputs, their steps in passes of batch_size
    # copies: full passes, and one compiled call per chunk.
    (curves,) = run.run(run.batch_size, compute)
    if len(maps) != run.data.count:
        raise ValueError(
            f"`maps` must hold one map per input ({run.data.count}). "
            f"Received: maps.shape={maps.shape}"
        )
    areas = (curves[:, :-1] + curves[:, 1:]).sum(axis=1) / (2 * steps)
    areas = areas.astype("float32")
    return (areas, curves.astype("float32")) if return_curves else areas


def _is_numeric(value):
    try:
        return np.issubdtype(np.asarray(value).dtype, np.number)
    except (ValueError, TypeError):
        return False


_DOC = """
    Args:
        model: A Keras 3 model with one input.
        inputs: As in `keras_aprelu.viz.saliency` (an array, or a
            `tf.data.Dataset` of them), one input per map.
        maps: The maps to judge, shape `(batch, *spatial)`, as every viz
            method returns them (normalized or not: only their order
            counts).
        target: `None` (the class predicted on the clean input), an int, a
            sequence of ints, or a callable, as in `saliency`.
        steps: Steps of the curve; step k moves the top `round(k * P /
            steps)` of the P positions (rounded half to even). Defaults to
            16.
        baseline: The value of removed positions: a number or an array of
            the shape of one input or of the batch. Defaults to 0.0.
        batch_size: Samples per pass. Defaults to 64.
        return_curves: Also return the curves. Defaults to `False`.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        The area under each curve, trapezoidal over the fraction [0, 1] of
        positions moved, float32 of shape `(batch,)`; with `return_curves`,
        also the curves, `(batch, steps + 1)`. A curve is the model's output
        for the target, as it is: probabilities for a softmax model.

    Positions are ranked by the map, largest first, ties in position order;
    all channels of a position move together.

    Cost: `steps + 1` forward passes per input, plus one; all steps of a
    chunk are batched, `batch_size` per pass.
"""


def deletion(
    model,
    inputs,
    maps,
    target=None,
    *,
    steps=16,
    baseline=0.0,
    batch_size=64,
    return_curves=False,
    progress=False,
):
    """Deletion (Petsiuk et al., 2018): the score as the positions a map
    ranks highest are set to `baseline`, most important first. Lower is
    better: a faithful map removes what the model needs first.
    {doc}"""
    return _curves(
        False,
        model,
        inputs,
        maps,
        target,
        steps,
        baseline,
        batch_size,
        return_curves,
        progress,
    )


def insertion(
    model,
    inputs,
    maps,
    target=None,
    *,
    steps=16,
    baseline=0.0,
    batch_size=64,
    return_curves=False,
    progress=False,
):
    """Insertion (Petsiuk et al., 2018): the score as the positions a map
    ranks highest are restored from the input into an all-`baseline` input,
    most important first. Higher is better.
    {doc}"""
    return _curves(
        True,
        model,
        inputs,
        maps,
        target,
        steps,
        baseline,
        batch_size,
        return_curves,
        progress,
    )


for _function in (deletion, insertion):
    if _function.__doc__:  # None under python -OO
        _function.__doc__ = _function.__doc__.replace("{doc}", _DOC)
