"""Faithfulness metrics and sanity checks: which map to believe.

`deletion` and `insertion` (Petsiuk et al., 2018) ask whether the positions
a map ranks highest are the ones the model needs: removing them first
should make the score fall fast (a low deletion area), and restoring them
first should make it rise fast (a high insertion area).
`road` (Rong et al., 2022) removes them by noisy linear imputation
instead, so that the shape of what is removed does not tell the model the
class. `randomization_test` (Adebayo et al., 2018) asks whether a map
depends on the model at all.
"""

import warnings

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _imputation
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _masked
from keras_aprelu.viz import _request
from keras_aprelu.viz import _scores

__all__ = ["areas", "deletion", "insertion", "randomization_test", "road"]


def _curve_function(run, steps, insert):
    # What the compiled function keeps must not hold the model: the plan.
    plan, score_fn, size = run.plan, run.targets.score_fn, run.batch_size

    def build(model):
        def fn(xs, baseline, ranks, counts, targets):
            # The model's output as it is (probabilities for a softmax
            # model), for the class predicted on the clean input.
            targets = _scores.chosen_targets(plan.forward(model, xs), targets)
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
                plan,
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

    key = ("insertion" if insert else "deletion", plan.layout, steps, size)
    return _backend.compiled(run.model, (*key, run.targets.key), build)


def areas(curves):
    """The trapezoidal area of each curve over the fraction [0, 1] of
    positions moved.

    Args:
        curves: The curves of `deletion` or `insertion` (with
            `return_curves=True`), shape `(batch, steps + 1)`.

    Returns:
        float32 array of shape `(batch,)`.
    """
    curves = np.asarray(curves, "float32")
    steps = curves.shape[1] - 1
    return ((curves[:, :-1] + curves[:, 1:]).sum(axis=1) / (2 * steps)).astype(
        "float32"
    )


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
    run = _request.request(
        model,
        inputs,
        target,
        logits=False,
        normalize=False,
        progress=progress,
        batch_size=batch_size,
    )
    layout = run.layout
    if layout.kind != "array":
        raise ValueError(
            "`inputs` must be one array: deletion and insertion rank the "
            "positions of a single input. Received: inputs with "
            f"{len(layout.keys)} entries"
        )
    maps = _checked_maps(maps)
    fn = _curve_function(run, steps, insert)

    def compute(start, xs):
        count = len(xs[0])
        spatial = layout.spatial_shape(0, xs[0].shape)
        part = _maps_of_chunk(maps, start, count, spatial)
        positions = int(np.prod(spatial))
        counts = np.rint(np.arange(steps + 1) * positions / steps).astype("int32")
        (base,) = _inputs.baselines(baseline, layout, xs, start)
        chosen = run.targets.slice(start, start + count)
        return [fn(xs, base, _ranks(part), counts, chosen)]

    # Chunks of batch_size inputs, their steps in passes of batch_size
    # copies: full passes, and one compiled call per chunk.
    (curves,) = run.run(run.batch_size, compute)
    _check_map_count(maps, run.data.count)
    curves = curves.astype("float32")
    _warn_if_flat(curves, "insertion" if insert else "deletion")
    return (areas(curves), curves) if return_curves else areas(curves)


# A curve whose ends differ by less than this, relative to the score's
# scale, says the model's score does not depend on what was moved.
FLAT_CURVE = 1e-3


def _warn_if_flat(curves, name):
    """One warning when the score barely moves between the whole input and
    the fully removed one: every map then gets the same area, which says
    nothing about the maps."""
    span = np.abs(curves[:, -1] - curves[:, 0])
    scale = np.maximum(np.abs(curves).max(axis=1), 1e-12)
    flat = int(np.sum(span <= FLAT_CURVE * scale))
    if flat:
        warnings.warn(
            f"For {flat} of {len(curves)} inputs the model's score barely "
            f"moves between the whole input and the fully removed one (by "
            f"less than {FLAT_CURVE:g} of its size), so every map gets the "
            f"same {name} area there and the metric cannot tell maps apart. "
            "Is the target a class the model scores, and the baseline "
            "different from the input?",
            UserWarning,
            stacklevel=4,  # _curves, deletion or insertion, the caller
        )


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


ROAD_ORDERS = ("morf", "lerf", "combined")


def _road_scores(run):
    """The compiled (targets, scores) of a batch: `targets` with -1 replaced
    by the class predicted on it, and the score of each."""
    plan, score_fn = run.plan, run.targets.score_fn

    def build(model):
        def fn(xs, targets):
            with plan.logits_applied():
                outputs = plan.forward(model, xs)
            targets = _scores.chosen_targets(outputs, targets)
            return [targets, _scores.score(outputs, targets, score_fn)]

        return fn

    key = ("road", plan.layout, plan.logits, run.targets.key)
    return _backend.compiled(run.model, key, build)


def _removed(cam, order, percentile):
    """The pixels ROAD removes from an image whose map is `cam`, as
    pytorch-grad-cam 1.5.7 chooses them: most relevant first, those at or
    above the map's `percentile`-th percentile; least relevant first, the
    same on `1 - cam`."""
    values = cam if order == "morf" else 1 - cam
    return ~(values < np.percentile(values, percentile))


def _check_percentiles(percentiles):
    values = None
    if isinstance(percentiles, (list, tuple)) and percentiles:
        values = [_args.check_number(p, "percentiles", 0, 100) for p in percentiles]
    if not values or not all(0 < v < 100 for v in values):
        raise ValueError(
            "`percentiles` must be a non-empty list of numbers strictly "
            f"between 0 and 100. Received: percentiles={percentiles!r}"
        )
    return tuple(values)


def road(
    model,
    inputs,
    maps,
    target=None,
    *,
    order="combined",
    percentiles=(10, 20, 30, 40, 50, 60, 70, 80, 90),
    noise=0.01,
    seed=0,
    logits=True,
    batch_size=64,
    return_curve=False,
    progress=False,
):
    """ROAD, RemOve And Debias (Rong et al., ICML 2022): the score's change
    when the pixels a map ranks highest (or lowest) are removed by noisy
    linear imputation.

    Deletion and insertion black pixels out, and the shape of the black
    region can tell the model the class by itself. ROAD instead replaces
    each removed pixel by the weighted mean of its neighbours (1/6 for
    direct, 1/12 for diagonal ones), from one sparse linear solve per image
    and percentile, plus Gaussian noise, so that what is left says little
    about what was removed.

    The percentiles, the orders and the scores are exactly those of
    pytorch-grad-cam 1.5.7's `ROADMostRelevantFirstAverage`,
    `ROADLeastRelevantFirstAverage` and `ROADCombined` (with `noise=0` the
    two give the same numbers; tested):

    - `"morf"`, most relevant first: at percentile p the pixels whose map
      value is at or above the map's p-th percentile are removed, the top
      100 - p %, and the score is the target's score after the removal
      minus before, averaged over the percentiles. Lower (a larger drop) is
      better.
    - `"lerf"`, least relevant first: the same on `1 - map`, removing the
      bottom 100 - p %. Higher (a smaller drop) is better.
    - `"combined"`: `(lerf - morf) / 2`. Higher is better. Each order alone
      can be gamed: an all-zero map does well on MoRF, as pytorch-grad-cam's
      tutorial shows; together they cannot.

    Args:
        model: A Keras 3 model with one input, images.
        inputs: As in `keras_aprelu.viz.saliency`: images `(batch, height,
            width, channels)` (channels first if the model's layers are),
            or a `tf.data.Dataset` of them.
        maps: One map per image, `(batch, height, width)`, as every viz
            method returns them (only their order counts).
        target: `None` (the class predicted on the image), an int, a
            sequence of ints, or a callable, as in `saliency`.
        order: `"morf"`, `"lerf"` or `"combined"`. Defaults to
            `"combined"`.
        percentiles: The percentiles p at which pixels are removed.
            Defaults to (10, 20, ..., 90).
        noise: Standard deviation of the Gaussian noise added to the
            imputed pixels, in the images' units. Defaults to 0.01, the
            ROAD authors' and pytorch-grad-cam's. 0 gives pytorch-grad-cam's
            numbers exactly.
        seed: Seed of the noise: image j of `inputs`, order o and
            percentile k get `np.random.default_rng([seed, j, o, k])`,
            however the batch is chunked. Defaults to 0.
        logits: Score the pre-activation logits when the model ends in
            softmax or sigmoid, as pytorch-grad-cam scores the model's
            output. Defaults to `True`.
        batch_size: Images per forward pass (the imputed copies of a chunk
            of inputs). Defaults to 64.
        return_curve: Also return the score's change at every percentile,
            a dict from each order computed (`"morf"`, `"lerf"`) to an
            array `(batch, len(percentiles))`. Defaults to `False`.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        float32 array of shape `(batch,)`, one score per image; with
        `return_curve`, `(scores, curves)`.

    Cost: one sparse solve (SciPy) and one forward pass per image, order
    and percentile, plus one forward pass per image.
    """
    order = _args.check_choice(order, "order", ROAD_ORDERS)
    percentiles = _check_percentiles(percentiles)
    noise = _args.check_number(noise, "noise", 0)
    seed = _args.check_int(seed, "seed", 0)
    return_curve = _args.check_bool(return_curve, "return_curve")
    _imputation.check_available()
    run = _request.request(
        model,
        inputs,
        target,
        logits=logits,
        normalize=False,
        progress=progress,
        batch_size=batch_size,
    )
    layout = run.layout
    if layout.kind != "array" or layout.ranks[0] != 4:
        raise ValueError(
            "`inputs` must be one array of images, (batch, height, width, "
            "channels): ROAD imputes pixels from their neighbours in the "
            f"image. Received: inputs of rank {layout.ranks}"
        )
    maps = _checked_maps(maps)
    orders = ("morf", "lerf") if order == "combined" else (order,)
    fn = _road_scores(run)
    copies = len(orders) * len(percentiles)

    def compute(start, xs):
        (x,) = xs
        count = len(x)
        part = _maps_of_chunk(maps, start, count, layout.spatial_shape(0, x.shape))
        images = np.moveaxis(x, 1, -1) if layout.channels_first else x
        chosen, before = (
            _backend.to_numpy(v)
            for v in fn([x], run.targets.slice(start, start + count))
        )
        imputed = np.empty((count * copies, *x.shape[1:]), x.dtype)
        for j in range(count):
            for o, which in enumerate(orders):
                for k, percentile in enumerate(percentiles):
                    rng = np.random.default_rng([seed, start + j, o, k])
                    removed = _removed(part[j], which, percentile)
                    image = _imputation.impute(images[j], removed, noise, rng)
                    if layout.channels_first:
                        image = np.moveaxis(image, -1, 0)
                    imputed[(j * len(orders) + o) * len(percentiles) + k] = image
        repeated = np.repeat(chosen, copies)
        after = []
        for first in range(0, len(imputed), run.batch_size):
            batch = imputed[first : first + run.batch_size]
            _, scores = fn([batch], repeated[first : first + run.batch_size])
            after.append(_backend.to_numpy(scores))
        after = np.concatenate(after).reshape(count, len(orders), len(percentiles))
        return [(after - before[:, None, None]).astype("float32")]

    (changes,) = run.run(max(1, run.batch_size // copies), compute)
    _check_map_count(maps, run.data.count)
    curves = dict(zip(orders, np.moveaxis(changes, 1, 0), strict=True))
    averages = {which: curve.mean(axis=1) for which, curve in curves.items()}
    if order == "combined":
        scores = (averages["lerf"] - averages["morf"]) / 2
    else:
        scores = averages[order]
    scores = scores.astype("float32")
    return (scores, curves) if return_curve else scores


def _checked_maps(maps):
    given = maps
    maps = np.asarray(maps, "float32") if _inputs.is_numeric(maps) else None
    if maps is None or not np.isfinite(maps).all():
        what = "non-finite values" if maps is not None else type(given).__name__
        raise ValueError(
            "`maps` must be a finite numeric array of shape (batch, *spatial). "
            f"Received: maps={what}"
        )
    return maps


def _maps_of_chunk(maps, start, count, spatial):
    part = maps[start : start + count]
    if part.shape != (count, *spatial):
        raise ValueError(
            "`maps` must hold one map per input, of the inputs' spatial "
            f"shape (batch, {', '.join(map(str, spatial))}). "
            f"Received: maps.shape={maps.shape}"
        )
    return part


def _check_map_count(maps, count):
    if len(maps) != count:
        raise ValueError(
            f"`maps` must hold one map per input ({count}). "
            f"Received: maps.shape={maps.shape}"
        )


def _rank(values):
    """Ranks of each row, ties given their average rank (as Spearman's)."""
    ranks = np.empty(values.shape, "float64")
    for row, value in enumerate(values):
        order = np.argsort(value, kind="stable")
        ordered = value[order]
        # Runs of equal values share the mean of their positions.
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(value)]
        mean = (starts + ends - 1) / 2.0
        ranks[row, order] = np.repeat(mean, ends - starts)
    return ranks


def _spearman(a, b):
    """Spearman's rank correlation of each pair of maps, shape (batch,); NaN
    where either map is constant, which has no ranking to correlate (0 would
    read as "the map changed completely", a pass)."""
    a = _rank(np.asarray(a, "float64").reshape(len(a), -1))
    b = _rank(np.asarray(b, "float64").reshape(len(b), -1))
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    safe = np.where(norm > 0, norm, 1)
    return np.where(norm > 0, (a * b).sum(axis=1) / safe, np.nan).astype("float32")


def _weighted_layers(model, layers):
    """(path, layer) of the layers to randomize, from the output down."""
    from keras_aprelu.viz import _layers

    if layers is None:
        found = [
            (path, layer)
            for path, layer in reversed(_layers.layers_that_ran(model))
            if any(w.trainable for w in layer.weights)
        ]
    else:
        if isinstance(layers, (str, keras.layers.Layer)) or not isinstance(
            layers, (list, tuple)
        ):
            raise TypeError(
                "`layers` must be a list of layer names, paths or Layers. "
                f"Received: layers={layers!r}"
            )
        found = [_layers.find_layer(model, layer, "layers") for layer in layers]
    unique = list({id(layer): (path, layer) for path, layer in found}.values())
    if not unique:
        raise ValueError(
            "`model` has no layer with trainable weights to randomize. "
            f"Received: layers={layers!r}"
        )
    return unique


def _initializer_of(layer, weight, seed):
    """The layer's own initializer of `weight` (`kernel_initializer` for a
    weight named "kernel", and so on), seeded with `seed`, or None."""
    name = weight.path.rsplit("/", 1)[-1]
    initializer = getattr(layer, f"{name}_initializer", None)
    if not isinstance(initializer, keras.initializers.Initializer):
        return None
    config = initializer.get_config()
    if "seed" in config:
        config["seed"] = seed
    return type(initializer).from_config(config)


def _redrawn(layer, weight, rng):
    """New values for `weight`: its layer's initializer where the layer has
    one for it (as Adebayo et al. do), else a Gaussian of the weight's own
    spread, or of its mean magnitude where it has no spread (a batch-norm
    scale of ones), so that no weight with a scale collapses to zero."""
    value = np.asarray(keras.ops.convert_to_numpy(weight))
    initializer = _initializer_of(layer, weight, int(rng.integers(2**31)))
    if initializer is not None:
        drawn = initializer(value.shape, dtype=value.dtype)
        return np.asarray(keras.ops.convert_to_numpy(drawn))
    scale = float(value.std()) or float(np.abs(value).mean())
    return rng.normal(0.0, scale, value.shape).astype(value.dtype)


def _check_maps(maps, shape, method, which):
    """`maps`, checked to be an array of `shape` (the count may be None: a
    stream)."""
    if not isinstance(maps, np.ndarray) or not (
        maps.shape[1:] == shape[1:] and shape[0] in (None, maps.shape[0])
    ):
        raise ValueError(
            f"`method` must return one map per input, of the inputs' spatial "
            f"shape {shape}, for the {which} model. Received: "
            f"method={getattr(method, '__name__', method)!r} returning "
            f"{getattr(maps, 'shape', type(maps).__name__)}"
        )
    return maps


def randomization_test(
    model, inputs, method, target=None, *, layers=None, seed=0, **method_kwargs
):
    """The model-parameter randomization test (Adebayo et al., 2018).

    The weighted layers are randomized cumulatively, from the output layer
    down, and the maps of `method` are computed again after each step. A
    method whose maps explain the model must change as its weights do: the
    rank correlation with the original maps should fall as the layers go.
    (Guided backprop is known to fail it on ReLU networks.)

    Each trainable weight is redrawn by its layer's own initializer, as in
    the paper (`kernel_initializer` for a kernel, `gamma_initializer` for a
    batch-norm scale, ...), seeded from `seed`. A weight whose layer exposes
    no initializer for it (APReLU's inner batch norms) is drawn from a
    Gaussian of its own spread, or of its mean magnitude where it has no
    spread, so that no weight collapses to zero. Moving statistics stay as
    they are. Every weight of the model is restored afterwards, bit for
    bit, also when an error is raised.

    A map that is constant (usually all zeros: no attribution), before or
    after a step, has no ranking: its correlation is NaN, never a score, and
    one warning counts them. Summaries should ignore NaN
    (`plot_randomization_test` does, and says how many).

    Args:
        model: A Keras 3 model.
        inputs: As in `saliency`.
        method: A viz map method, such as `viz.saliency` or `viz.grad_cam`.
        target: As in `saliency`; `None` fixes the classes predicted by the
            original model, so that every step explains the same class.
        layers: The layers to randomize, in order (names, paths or
            Layers). Defaults to every layer with trainable weights, from
            the output down, in the order they ran.
        seed: Seed of the new weights. Defaults to 0.
        **method_kwargs: Passed to `method`.

    Returns:
        dict from the path of the last layer randomized at each step, in
        order, to the Spearman rank correlation of each input's map with
        its original map, float32 of shape `(batch,)`, NaN where either
        map is constant.

    Cost: the method's cost once per layer, plus once.
    """
    if not callable(method):
        raise TypeError(
            "`method` must be a viz map method, such as viz.saliency. "
            f"Received: method={method!r}"
        )
    seed = _args.check_int(seed, "seed", 0)
    data = _inputs.read(model, inputs)
    if target is None and data.facts.num_classes is not None:
        # The classes of the original model, explained at every step.
        plan = _request.plan_of(data, logits=True)
        classes = _scores.classes_function(model, plan)

        def predicted(start, xs):
            return [classes(xs, np.full(len(xs[0]), -1, "int32"))]

        (target,) = _inputs.collect(data, 256, predicted)
    found = _weighted_layers(model, layers)
    layout = data.layout
    shape = (
        data.count,
        *layout.spatial_shape(0, (None, *data.sample_shapes[0])),
    )
    original = _check_maps(
        method(model, inputs, target, **method_kwargs), shape, method, "original"
    )
    saved = [np.array(w) for w in model.get_weights()]
    rng = np.random.default_rng(seed)
    result = {}
    try:
        for path, layer in found:
            for weight in layer.weights:
                if weight.trainable:
                    weight.assign(_redrawn(layer, weight, rng))
            maps = _check_maps(
                method(model, inputs, target, **method_kwargs),
                original.shape,  # a stream's count is known from here on
                method,
                f"randomized (up to {path!r})",
            )
            result[path] = _spearman(original, maps)
    finally:
        model.set_weights(saved)
    flat = sum(int(np.isnan(v).sum()) for v in result.values())
    if flat:
        total = sum(v.size for v in result.values())
        warnings.warn(
            f"{flat} of {total} correlations of the randomization test are NaN: "
            "the original or the randomized map was constant (no "
            "attribution), which has no ranking to correlate. Leave them out "
            "of any summary (np.nanmean); they are neither a pass nor a fail.",
            UserWarning,
            stacklevel=2,
        )
    return result
