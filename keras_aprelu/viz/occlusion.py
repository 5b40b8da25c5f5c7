"""Occlusion sensitivity (Zeiler and Fergus, 2014)."""

import itertools
import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_aprelu.viz import _layers
from keras_aprelu.viz import _targets

__all__ = ["occlusion"]


def _per_axis(value, name, spatial, default=None):
    if value is None:
        value = default
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),) * len(spatial)
    value = tuple(value) if isinstance(value, (tuple, list)) else None
    ok = (
        value is not None
        and len(value) == len(spatial)
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
            for v in value
        )
    )
    if not ok:
        raise ValueError(
            f"`{name}` must be a positive int or one per spatial axis "
            f"{tuple(spatial)}. Received: {name}={value!r}"
        )
    return tuple(int(v) for v in value)


def patch_starts(size, patch, stride):
    """Start of every patch along one axis; the last patch reaches the end."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def occlusion_masks(spatial, patch_size, stride):
    """One boolean mask per patch position, shape (positions, *spatial)."""
    axes = [
        patch_starts(size, patch, step)
        for size, patch, step in zip(spatial, patch_size, stride, strict=True)
    ]
    masks = np.zeros((np.prod([len(a) for a in axes]), *spatial), bool)
    for index, corner in enumerate(itertools.product(*axes)):
        masks[
            (index, *(slice(c, c + p) for c, p in zip(corner, patch_size, strict=True)))
        ] = True
    return masks


def _occlusion_functions(model, logits, score_fn, rank):
    """The clean pass of a chunk of inputs, and one pass of occluded pairs."""

    def build_clean():
        def fn(x, targets):
            # -> the clean scores (k,) and the classes they are taken of.
            with _targets.logits_of(model, logits):
                clean = model(x, training=False)
                targets = _targets.chosen_targets(clean, targets)
                return _targets.score(clean, targets, score_fn), targets

        return fn

    def build_pairs():
        def fn(x, baseline, masks, targets, start, stop):
            # Pairs start..stop-1 of (input, position), input-major, each
            # input occluded by one mask -> their scores (stop - start,).
            pair = tf.range(start, stop)
            count = tf.shape(masks)[0]
            which, where = pair // count, pair % count
            m = tf.cast(tf.gather(masks, where), x.dtype)
            if rank >= 3:
                m = m[..., None]
            occluded = tf.gather(x, which) * (1 - m) + tf.gather(baseline, which) * m
            with _targets.logits_of(model, logits):
                outputs = model(occluded, training=False)
                return _targets.score(outputs, tf.gather(targets, which), score_fn)

        return fn

    key = (logits, score_fn, rank)
    return (
        _targets.compiled(model, ("occlusion clean", *key), build_clean),
        _targets.compiled(model, ("occlusion pairs", *key), build_pairs),
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
    `F(x) - F(x occluded)`. Each pixel gets the mean drop over the patches
    that cover it. Positions start every `stride` along each spatial axis,
    and one more is added where needed so that the last patch reaches the
    edge. With `stride <= patch_size` every pixel is covered; pixels that no
    patch covers (a larger stride) get 0.

    Args:
        model, inputs, target, logits, normalize, batch_size, progress: As
            in `saliency`. The predicted class is that of the clean input.
        patch_size: An int, or one int per spatial axis. Defaults to 4.
        stride: Like `patch_size`; defaults to `patch_size` (no overlap).
        baseline: The value of hidden pixels: a number, or an array of the
            shape of one input or of the batch. Defaults to 0.0.

    Returns:
        float32 array of shape `(batch, *spatial)`. With `normalize=False`
        it is positive where hiding the pixel lowers the score and negative
        where it raises it; `normalize=True` shows the magnitude,
        `|map| / max|map|`.

    Cost: one forward pass per input and patch position, plus one. The
    occluded copies of up to `batch_size` inputs stream through passes of
    exactly `batch_size` samples.
    """
    _layers.check_model(model)
    logits = _targets.check_bool(logits, "logits")
    batch_size = _targets.check_positive_int(batch_size, "batch_size")
    x = _targets.as_batch(model, inputs)
    spatial_axes = _targets.feature_axes(x.ndim)
    spatial = tuple(x.shape[a] for a in spatial_axes)
    patch_size = _per_axis(patch_size, "patch_size", spatial)
    if any(p > s for p, s in zip(patch_size, spatial, strict=True)):
        raise ValueError(
            f"`patch_size` must fit in the inputs' spatial size {spatial}. "
            f"Received: patch_size={patch_size}"
        )
    stride = _per_axis(stride, "stride", spatial, default=patch_size)
    base = _targets.baseline_for(baseline, x)
    targets, score_fn = _targets.targets_for(
        target, len(x), _targets.num_classes(model)
    )
    masks = occlusion_masks(spatial, patch_size, stride)
    clean_fn, pairs_fn = _occlusion_functions(model, logits, score_fn, x.ndim)
    positions = len(masks)
    masks_tensor = tf.constant(masks)
    # Every (input, position) pair of a chunk of inputs streams through
    # passes of exactly `batch_size` occluded samples (the last one fewer),
    # so no pass runs half empty whatever the number of positions.
    bar = keras.utils.Progbar(len(x), unit_name="sample") if progress else None
    drops = []
    for first in range(0, len(x), batch_size):
        part = slice(first, min(len(x), first + batch_size))
        xs, bs = tf.constant(x[part]), tf.constant(base[part])
        clean, chosen = clean_fn(xs, tf.constant(targets[part]))
        total = len(x[part]) * positions
        scores = []
        for start in range(0, total, batch_size):
            stop = min(total, start + batch_size)
            scores.append(
                pairs_fn(
                    xs, bs, masks_tensor, chosen, tf.constant(start), tf.constant(stop)
                ).numpy()
            )
            if bar is not None:
                bar.update(first + stop // positions)
        scores = np.concatenate(scores).reshape(-1, positions)
        drops.append(clean.numpy()[:, None] - scores)
    drops = np.concatenate(drops)
    flat = masks.reshape(positions, -1).astype("float32")
    covered = flat.sum(axis=0)
    heat = (drops @ flat) / np.maximum(covered, 1)  # uncovered pixels: 0
    return _targets.finish(heat.reshape((len(x), *spatial)), normalize)
