"""Occlusion sensitivity (Zeiler and Fergus, 2014)."""

import itertools

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _docs
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _masked
from keras_aprelu.viz import _request
from keras_aprelu.viz import _scores

__all__ = ["occlusion"]


def patch_starts(size, patch, stride):
    """Start of every patch along one axis; the last patch reaches the end."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def patch_corners(spatial, patch_size, stride):
    """The corner of every patch position, int32 of shape (positions, axes),
    in row-major order."""
    axes = [
        patch_starts(size, patch, step)
        for size, patch, step in zip(spatial, patch_size, stride, strict=True)
    ]
    return np.array(list(itertools.product(*axes)), "int32").reshape(-1, len(axes))


def _occlusion_function(run, index, patch_size):
    """The drops of a chunk of samples, one per (sample, patch position) of
    input `index`, shape (samples, positions), in one compiled call."""
    # What the compiled function keeps must not hold the model: the plan.
    plan, score_fn, size = run.plan, run.targets.score_fn, run.batch_size
    layout = plan.layout

    def build(model):
        def fn(xs, baseline, corners, targets):
            x = xs[index]
            axes = layout.spatial_axes(index)

            def mask_of(which, where):
                # The patch at corners[where]: inside along every axis.
                corner = keras.ops.take(corners, where, axis=0)
                mask = None
                for a, axis in enumerate(axes):
                    iota = keras.ops.arange(keras.ops.shape(x)[axis], dtype="int32")
                    low = corner[:, a : a + 1]
                    inside = (iota[None] >= low) & (iota[None] < low + patch_size[a])
                    shape = [-1] + [1] * len(axes)
                    shape[1 + a] = keras.ops.shape(x)[axis]
                    inside = keras.ops.reshape(inside, shape)
                    mask = inside if mask is None else mask & inside
                return mask

            with plan.logits_applied():
                clean = plan.forward(model, xs)
                targets = _scores.chosen_targets(clean, targets)
                clean = _scores.score(clean, targets, score_fn)
                occluded = _masked.scores(
                    model,
                    plan,
                    index,
                    xs,
                    baseline,
                    keras.ops.shape(corners)[0],
                    mask_of,
                    targets,
                    size=size,
                    score_fn=score_fn,
                )
            return clean[:, None] - occluded

        return fn

    key = ("occlusion", layout, index, patch_size, size, plan.logits)
    return _backend.compiled(run.model, (*key, run.targets.key), build)


def _heat(drops, corners, patch_size, spatial):
    """Each position's mean drop over the patches that cover it (0 where
    none does), accumulated patch by patch: memory stays at the maps."""
    heat = np.zeros((len(drops), *spatial), "float32")
    covered = np.zeros(spatial, "float32")
    for p, corner in enumerate(corners):
        window = tuple(slice(c, c + s) for c, s in zip(corner, patch_size, strict=True))
        heat[(slice(None), *window)] += drops[:, p].reshape((-1,) + (1,) * len(spatial))
        covered[window] += 1
    return heat / np.maximum(covered, 1)


@_docs.shared_args(
    *_docs.METHOD_ARGS,
    notes={"target": "The predicted class is that of the clean input."},
)
def occlusion(
    model,
    inputs,
    target=None,
    *,
    patch_size=4,
    stride=None,
    baseline=0.0,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Occlusion sensitivity: how much the score drops when a patch is
    hidden.

    Every patch position replaces a `patch_size` window of the input (all
    channels) with `baseline` and measures the drop of the score,
    `F(x) - F(x occluded)`. Each position gets the mean drop over the
    patches that cover it. Patches start every `stride` along each spatial
    axis, and one more is added where needed so that the last patch reaches
    the edge. With `stride <= patch_size` every position is covered;
    positions that no patch covers (a larger stride) get 0. With several
    inputs, each is occluded in turn while the others stay whole.

    It needs no gradient and does not depend on the sign of any layer's
    features.

    Args:
        patch_size: An int, or a tuple with one int per spatial axis; for
            several inputs, also a list or dict with one of those per input.
            Defaults to 4.
        stride: Like `patch_size`; defaults to `patch_size` (no overlap).
        baseline: The value of hidden pixels: a number, or an array of the
            shape of one input or of the batch; for several inputs, also a
            list or dict with one of those per input. Defaults to 0.0.

    Returns:
        As `saliency`. With `normalize=False` a map is positive where hiding
        the position lowers the score and negative where it raises it;
        `normalize=True` shows the magnitude, `|map| / max|map|`.

    Cost: one forward pass per input and patch position, plus one. The
    occluded copies stream through passes of `batch_size` samples, run one
    after the other in one compiled call per chunk of `batch_size` inputs,
    and memory stays at `batch_size` inputs, whatever the number of
    positions.
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
    layout, batch_size = run.layout, run.batch_size
    plans = None

    def plan(xs):
        """Per input: (spatial size, patch size, corners), checked once."""
        result = []
        patches = _inputs.per_input(patch_size, "patch_size", layout)
        strides = _inputs.per_input(stride, "stride", layout)
        for i, x in enumerate(xs):
            spatial = layout.spatial_shape(i, x.shape)
            patch = _args.per_axis(patches[i], "patch_size", spatial)
            if any(p > s for p, s in zip(patch, spatial, strict=True)):
                raise ValueError(
                    f"`patch_size` must fit in the inputs' spatial size {spatial}. "
                    f"Received: patch_size={patch_size!r}"
                )
            step = _args.per_axis(
                patch if strides[i] is None else strides[i], "stride", spatial
            )
            result.append((spatial, patch, patch_corners(spatial, patch, step)))
        return result

    def compute(start, xs):
        nonlocal plans
        plans = plans or plan(xs)
        bases = _inputs.baselines(baseline, layout, xs, start)
        chosen = run.targets.slice(start, start + len(xs[0]))
        results = []
        for i, (spatial, patch, corners) in enumerate(plans):
            fn = _occlusion_function(run, i, patch)
            drops = _backend.to_numpy(fn(xs, bases[i], corners, chosen))
            results.append(_heat(drops, corners, patch, spatial))
        return results

    return run.pack(run.run(batch_size, compute))
