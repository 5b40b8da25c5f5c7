"""Layer-wise relevance propagation and DeepLIFT, on every backend.

What each layer does under them is `_relevance`'s; this module runs them
as map methods.
"""

import keras
import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _docs
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _relevance
from keras_aprelu.viz import _request
from keras_aprelu.viz import _saliency
from keras_aprelu.viz import _scores

__all__ = ["deeplift", "deeplift_shap", "lrp"]

COMPOSITES = tuple(_relevance.COMPOSITES)


def _parts(run, method):
    """The `_relevance.Part`s of the run's model, or the error that names
    its first layer without a rule (before any work)."""
    squasher = run.plan.squasher if run.logits else None
    return _relevance.parts(_layers.inspection(run.model), squasher, method)


def _bound(value, name):
    """`low` or `high`: None, or a finite float32 array (for the cache key,
    its bytes)."""
    if value is None:
        return None, None
    array = np.asarray(value, dtype="float32") if _inputs.is_numeric(value) else None
    if array is None or not np.isfinite(array).all():
        raise ValueError(
            f"`{name}` must be None, a number or an array that broadcasts to "
            f"the first layer's input. Received: {name}={value!r}"
        )
    return array, (array.shape, array.tobytes())


def _lrp_function(run, parts, composite, params, key):
    plan, score_fn = run.plan, run.targets.score_fn
    layout = plan.layout
    patches = _relevance.lrp_patches(parts, _relevance.COMPOSITES[composite], params)

    def build(model):
        def fn(xs, targets):
            def scored(xs, _):
                scores = _scores.score(plan.forward(model, xs), targets, score_fn)
                # The gradient at the score is the score: the relevance
                # the backward pass starts from.
                return scores * keras.ops.stop_gradient(scores), None

            with plan.logits_applied(), _relevance.patched(patches):
                _, _, grads, _ = _backend.grad(scored, xs)
            return [layout.reduce_channels(i, g, "sum") for i, g in enumerate(grads)]

        return fn

    return _backend.compiled(run.model, ("lrp", layout, plan.logits, *key), build)


@_docs.shared_args(*_docs.METHOD_ARGS)
def lrp(
    model,
    inputs,
    target=None,
    *,
    composite="epsilon_plus_flat",
    epsilon=1e-6,
    gamma=0.25,
    low=None,
    high=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Layer-wise relevance propagation (Bach et al., 2015), with zennit's
    composites.

    The relevance starts at the output as the target's score (the logit)
    and flows back layer by layer, each layer sharing out what it receives
    among its inputs by its rule, so that a map can be set beside zennit's
    on a PyTorch model of the same weights:

    - `"epsilon"`: the epsilon rule on every dense and convolutional layer;
    - `"epsilon_plus"`: z+ on the convolutions, epsilon on dense layers;
    - `"epsilon_plus_flat"`: as `"epsilon_plus"`, and the flat rule on the
      first layer;
    - `"epsilon_gamma_box"`: gamma on the convolutions, epsilon on dense
      layers, and z-box (bounds `low` and `high`) on the first convolution;
    - `"epsilon_alpha2_beta1"`: alpha-beta (2, 1) on the convolutions;
    - `"epsilon_alpha2_beta1_flat"`: and the flat rule on the first layer.

    The other layers, the same under every composite:

    - a BatchNormalization right after a dense or convolutional layer with
      no activation is merged into it first (zennit's canonizer);
      elsewhere it gets the epsilon rule;
    - average pooling, `Add` and `Average` split relevance in proportion to
      their inputs (zennit's Norm); max pooling and Maxout give it all to
      the winner; reshapes, dropout and `Concatenate` route it;
    - every elementwise activation passes it through unchanged (zennit's
      Pass): ReLU, ELU, GELU, swish, and PReLU, RReLU and APReLU. The
      slope of APReLU is not explained: its sub-network gets no
      relevance. The slope is a gate, and relevance pushed into it would
      be spread evenly over every position by the sub-network's global
      pooling, saying nothing about where;
    - a final softmax or sigmoid is bypassed (the score is the logit).

    A layer that has none of these rules (an attention layer, a softmax
    inside the model, a layer of your own) is refused before any work,
    naming it; `viz.register_relevance_rule` gives a layer of your own a
    rule. Nothing falls back to the plain gradient.

    The epsilon rule conserves relevance up to what the biases and epsilon
    absorb: on a model without biases, with a tiny `epsilon`, an input's
    relevance sums to its score.

    Args:
        composite: One of the names above. Defaults to
            `"epsilon_plus_flat"`.
        epsilon: The epsilon rule's stabilizer, added with the sign of the
            denominator. Defaults to 1e-6, zennit's.
        gamma: The gamma rule's weight on positive contributions. Defaults
            to 0.25.
        low: z-box's lowest input value: a number, or an array that
            broadcasts to the first layer's input (per channel, say).
            Defaults to `None`: each input's own minimum.
        high: z-box's highest input value, as `low`. Defaults to `None`:
            each input's own maximum.

    Returns:
        float32 array of shape `(batch, *spatial)`: the relevance summed
        over the channel axis (signed with `normalize=False`). For a model
        with several inputs, one map per input, as the inputs were given.

    Cost: one forward and one backward pass per input; the rules compute
    up to four extra outputs of each convolution.
    """
    composite = _args.check_choice(composite, "composite", COMPOSITES)
    epsilon = _args.check_number(epsilon, "epsilon", 0)
    gamma = _args.check_number(gamma, "gamma", 0)
    low, low_key = _bound(low, "low")
    high, high_key = _bound(high, "high")
    run = _request.request(
        model,
        inputs,
        target,
        logits=logits,
        normalize=normalize,
        progress=progress,
        batch_size=batch_size,
        input_gradients=True,
    )
    parts = _parts(run, "lrp")
    params = {"epsilon": epsilon, "gamma": gamma, "low": low, "high": high}
    key = (composite, epsilon, gamma, low_key, high_key, run.targets.key)
    fn = _lrp_function(run, parts, composite, params, key)

    def compute(start, xs):
        return fn(xs, run.targets.slice(start, start + len(xs[0])))

    return run.pack(
        run.run(run.batch_size, compute),
        gradient=_saliency.input_gradient_probe(run),
    )


def _deeplift_function(run, parts, copies, shared):
    """The compiled DeepLIFT maps of a chunk, averaged over `copies`
    baselines per input, and each input's gap. `shared`: one baseline for
    every input, given as one row."""
    plan, score_fn = run.plan, run.targets.score_fn
    layout = plan.layout
    patches = _relevance.deeplift_patches(parts, shared)

    def build(model):
        def fn(xs, bases, targets):
            with plan.logits_applied():
                targets = _scores.chosen_targets(plan.forward(model, xs), targets)
            targets = keras.ops.repeat(targets, copies)
            xs_rep = [keras.ops.repeat(x, copies, axis=0) for x in xs]

            def scored(xs_rep, _):
                both = [
                    keras.ops.concatenate([x, keras.ops.stop_gradient(b)], 0)
                    for x, b in zip(xs_rep, bases, strict=True)
                ]
                outputs = plan.forward(model, both)
                count = keras.ops.shape(targets)[0]
                own = keras.tree.map_structure(lambda o: o[:count], outputs)
                base = keras.tree.map_structure(lambda o: o[count:], outputs)
                if shared:  # the one baseline row, for every input's target
                    base = keras.tree.map_structure(
                        lambda o: keras.ops.repeat(o, count, axis=0), base
                    )
                scores = _scores.score(own, targets, score_fn)
                return scores, _scores.score(base, targets, score_fn)

            with plan.logits_applied(), _relevance.patched(patches):
                scores, base_scores, grads, _ = _backend.grad(scored, xs_rep)
            maps, total = [], 0.0
            for i, (x, b, g) in enumerate(zip(xs_rep, bases, grads, strict=True)):
                contribution = (x - b) * g
                total = total + keras.ops.sum(
                    keras.ops.reshape(contribution, [keras.ops.shape(x)[0], -1]), 1
                )
                summed = layout.reduce_channels(i, contribution, "sum")
                maps.append(
                    keras.ops.mean(
                        keras.ops.reshape(
                            summed, [-1, copies, *keras.ops.shape(summed)[1:]]
                        ),
                        1,
                    )
                )
            gap = total - (scores - base_scores)
            return [*maps, keras.ops.mean(keras.ops.reshape(gap, [-1, copies]), 1)]

        return fn

    key = ("deeplift", layout, plan.logits, run.targets.key, copies, shared)
    return _backend.compiled(run.model, key, build)


_DEEPLIFT_RULES = """
    Under the rescale rule (Shrikumar et al., 2017), every elementwise
    nonlinearity passes back the multiplier `(y - y0) / (x - x0)` of its
    output's and its input's changes from the baseline (its gradient where
    they are closer than 1e-10), as Captum's `DeepLift` does: ReLU, ELU,
    GELU, swish, sigmoid, and PReLU, RReLU and APReLU, whose slope is held
    as it is for each of the two (not explained). Max pooling and Maxout
    use the cross-max rule of Captum's max pooling. Linear layers,
    BatchNormalization, average pooling and reshapes keep their gradient.
    A layer with no rule (an attention layer, a softmax inside the model)
    is refused before any work, naming it. A final softmax or sigmoid is
    bypassed (the score is the logit).

    The attributions of an input sum to `F(x) - F(x0)` (summation to
    delta), up to float error, with one exception by design: where
    APReLU's input is the same for `x` and `x0` but its slope is not (the
    slopes of an image and of a black baseline differ), the change the
    slope makes is not attributed, since the slope is not explained.
    `return_gap` measures it; a baseline that differs from the input
    everywhere (a gray image rather than a black one, on MNIST) avoids
    it."""


@_docs.shared_args(*_docs.METHOD_ARGS)
def deeplift(
    model,
    inputs,
    target=None,
    *,
    baseline=0.0,
    logits=True,
    normalize=True,
    batch_size=64,
    return_gap=False,
    progress=False,
):
    """DeepLIFT: each input's change from a baseline `x0`, times its
    multiplier.

    The model runs on the inputs and the baselines in one batch.
    {rules}

    Args:
        baseline: `x0`: a number, or an array of the shape of one input or
            of the whole batch; for several inputs, also a list or dict
            with one of those per input. Defaults to 0.0.
        return_gap: Also return the summation-to-delta gap, shape (batch,):
            the sum of the attributions minus `F(x) - F(x0)`. Defaults to
            `False`.

    Returns:
        float32 array of shape `(batch, *spatial)`: the attributions summed
        over the channel axis (signed with `normalize=False`); several
        inputs give one map each. With `return_gap=True`, `(maps, gap)`.

    Cost: one forward pass of twice the batch and one backward pass.
    """
    return _deeplift(
        model,
        inputs,
        target,
        baselines=baseline,
        copies=1,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        return_gap=return_gap,
        progress=progress,
        method="deeplift",
    )


deeplift.__doc__ = deeplift.__doc__.replace("{rules}", _DEEPLIFT_RULES.strip())


@_docs.shared_args(*_docs.METHOD_ARGS)
def deeplift_shap(
    model,
    inputs,
    baselines,
    target=None,
    *,
    logits=True,
    normalize=True,
    batch_size=64,
    return_gap=False,
    progress=False,
):
    """DeepLIFT SHAP (Lundberg and Lee, 2017): DeepLIFT's attributions
    averaged over several baselines, reference samples drawn from the data,
    as Captum's `DeepLiftShap`.
    {rules}

    Args:
        baselines: The reference samples: an array of shape
            `(references, *input_shape)`, or a list or dict of those for
            several inputs. Every input is explained against each of them.
        return_gap: Also return the mean over the baselines of the
            summation-to-delta gap, shape (batch,). Defaults to `False`.

    Returns:
        As `deeplift`.

    Cost: `references` times DeepLIFT's; a pass holds
    `max(1, batch_size // references)` inputs.
    """
    return _deeplift(
        model,
        inputs,
        target,
        baselines=baselines,
        copies=None,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        return_gap=return_gap,
        progress=progress,
        method="deeplift_shap",
    )


deeplift_shap.__doc__ = deeplift_shap.__doc__.replace(
    "{rules}", _DEEPLIFT_RULES.strip()
)


def _references(baselines, layout, xs):
    """`baselines` of deeplift_shap, checked: one (references, ...) array
    per input, the same count for each."""
    items = _inputs.per_input(baselines, "baselines", layout)
    out = []
    for item, x in zip(items, xs, strict=True):
        array = np.asarray(item, "float32") if _inputs.is_numeric(item) else None
        if array is None or array.shape[1:] != x.shape[1:] or len(array) < 1:
            shape = getattr(item, "shape", type(item).__name__)
            raise ValueError(
                "`baselines` must be an array of reference samples, shape "
                f"(references, *{x.shape[1:]}). Received: baselines.shape={shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError("`baselines` must be finite. Received: baselines=...")
        out.append(array)
    if len({len(a) for a in out}) > 1:
        raise ValueError(
            "`baselines` must hold as many references for every input. "
            f"Received: counts {[len(a) for a in out]}"
        )
    return out


def _deeplift(model, inputs, target, *, baselines, copies, method, **common):
    return_gap = _args.check_bool(common.pop("return_gap"), "return_gap")
    run = _request.request(model, inputs, target, input_gradients=True, **common)
    parts = _parts(run, method)
    layout = run.layout
    shared = False
    if copies is None:
        _, first = next(run.data.batches(1))
        references = _references(baselines, layout, first)
        copies = len(references[0])
    else:
        items = _inputs.per_input(baselines, "baseline", layout)
        shared = all(
            np.ndim(item) < rank for item, rank in zip(items, layout.ranks, strict=True)
        )
    fn = _deeplift_function(run, parts, copies, shared)

    def compute(start, xs):
        if method == "deeplift":
            bases = _inputs.baselines(baselines, layout, xs, start)
            if shared:  # one row, the same for every input
                bases = [b[:1] for b in bases]
        else:
            # Input j's copies are rows j * copies ... of the repeated batch.
            bases = [
                np.tile(r, (len(x),) + (1,) * (r.ndim - 1))
                for r, x in zip(references, xs, strict=True)
            ]
        return fn(xs, bases, run.targets.slice(start, start + len(xs[0])))

    *maps, gaps = run.run(max(1, run.batch_size // copies), compute)
    maps = run.pack(maps, gradient=_saliency.input_gradient_probe(run))
    return (maps, gaps.astype("float32")) if return_gap else maps
