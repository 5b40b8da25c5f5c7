"""Scores of masked copies of the inputs, streamed through the model.

Occlusion (a patch per copy) and the deletion and insertion metrics (the
top-ranked positions per copy) all score, for every sample, a number of
variants in which some positions of one input are replaced by a baseline.
The pairs (sample, variant) run through passes of a fixed size, one after
the other inside one compiled call; each pass builds its own masks, so that
memory stays at one pass whatever the number of variants.
"""

import keras

from keras_aprelu.viz import _backend
from keras_aprelu.viz import _scores


def scores(model, plan, index, xs, baseline, variants, mask_of, targets, **kw):
    """The scores (samples, variants) of every sample's variants.

    Args:
        plan: The call's `_request.Plan` (layout, logits).
        index: Which input is masked; the others stay whole.
        variants: The number of variants per sample (a scalar tensor).
        mask_of: `mask_of(which, where)` -> a boolean mask (pairs,
            *spatial) of the positions to take from `baseline`, for the
            samples `which` and variants `where` of a pass.
        targets: The class of each sample (int32, no -1 left).
        kw: `size` (pairs per pass), `score_fn`, and optionally
            `outputs_fn`, applied to the model's outputs before scoring.
    """
    size, score_fn, layout = kw["size"], kw["score_fn"], plan.layout
    outputs_fn = kw.get("outputs_fn") or (lambda outputs: outputs)
    total = keras.ops.shape(xs[0])[0] * variants

    def one_pass(start):
        # Pairs past the last are clamped to it, and dropped after.
        pair = keras.ops.minimum(start + keras.ops.arange(size), total - 1)
        which, where = pair // variants, pair % variants
        mask = layout.broadcast_spatial(
            index, keras.ops.cast(mask_of(which, where), xs[index].dtype)
        )
        batch = [keras.ops.take(v, which, axis=0) for v in xs]
        batch[index] = (
            batch[index] * (1 - mask) + keras.ops.take(baseline, which, axis=0) * mask
        )
        outputs = outputs_fn(plan.forward(model, batch))
        return _scores.score(outputs, keras.ops.take(targets, which, axis=0), score_fn)

    starts = keras.ops.arange(0, total, size)
    flat = keras.ops.reshape(_backend.map_fn(one_pass, starts, sequential=True), [-1])
    return keras.ops.reshape(flat[:total], [-1, variants])
