"""Attention rollout and gradient rollout: maps of a transformer from its
attention, read over the token grid and upsampled like a CAM; and the
per-head attention maps of one block.

Each is a weighting for `_cam.cam`: the request, the default block (whose
input fixes the tokens and their grid), the upsampling and the output
contract are the CAMs'. The attention itself comes from `_attention`.
"""

import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _attention
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _cam
from keras_aprelu.viz import _docs
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _request
from keras_aprelu.viz import _scores


def _over_grid(rows, grid):
    """(batch, ..., T) first-token rows -> maps over the grid, or over the
    tokens for a sequence (text)."""
    return rows if grid is None else grid.row_to_map(rows)


def _rollout_weighting(head_fusion, discard_ratio):
    def maps_of(run, feature_map):
        found = [layer for _, layer in _attention.check_attention_layers(run.model)]
        plan, grid = run.plan, feature_map.grid

        def build(model):
            def fn(xs):
                store = []
                with _attention.recording(found, store):
                    plan.forward(model, xs)
                rows = _attention.rollout(store, head_fusion, discard_ratio)
                return _over_grid(rows, grid)

            return fn

        key = ("attention rollout", run.layout, grid, head_fusion, discard_ratio)
        fn = _backend.compiled(run.model, key, build)
        return lambda start, xs: fn(xs)

    return maps_of


def _gradient_rollout_weighting(run, feature_map):
    found = [layer for _, layer in _attention.check_attention_layers(run.model)]
    plan, grid, score_fn = run.plan, feature_map.grid, run.targets.score_fn

    def build(model):
        def fn(xs, targets):
            def scored(xs, tap):
                store = []
                with _attention.recording(found, store, tap):
                    outputs = plan.forward(model, xs)
                return _scores.score(outputs, targets, score_fn), store

            with plan.logits_applied():
                _, store, _, grads = _backend.grad(scored, xs, tap=True)
            return _over_grid(_attention.gradient_rollout(store, grads), grid)

        return fn

    key = ("gradient rollout", run.layout, grid, plan.logits, run.targets.key)
    fn = _backend.compiled(run.model, key, build)

    def maps(start, xs):
        return fn(xs, run.targets.slice(start, start + len(xs[0])))

    return maps


@_docs.shared_args(
    "model",
    "inputs",
    "token_grid",
    "normalize",
    "batch_size",
    "progress",
    returns="cam",
)
def attention_rollout(
    model,
    inputs,
    *,
    head_fusion="mean",
    discard_ratio=0.0,
    token_grid=None,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Attention rollout (Abnar & Zuidema, 2020): where the class token
    attends, through every block.

    Per block, the attention probabilities of its `MultiHeadAttention`
    layer are fused over the heads, the residual connection is added as
    `0.5 * A + 0.5 * I`, and the rows are renormalized; the blocks'
    matrices are multiplied in the order they ran. The map is the first
    (class) token's row over the patch tokens, laid out on the token grid
    and upsampled to the input; for text, over the tokens. It uses no
    target: the same map explains every class.

    Args:
        head_fusion: How the heads are fused: `"mean"`, `"max"` or
            `"min"`. Defaults to `"mean"`.
        discard_ratio: The fraction of each block's smallest fused
            attention entries set to 0 before the identity is added, the
            class token's own entry kept (as jacobgil/vit-explain does).
            Defaults to 0.

    Returns:

    Cost: one forward pass per input, with the attention computed
    explicitly (not by a fused kernel).
    """
    _args.check_choice(head_fusion, "head_fusion", _attention.HEAD_FUSIONS)
    discard_ratio = _args.check_number(discard_ratio, "discard_ratio", 0, 1)
    _attention.check_attention_layers(model)
    return _cam.cam(
        model,
        inputs,
        None,
        _rollout_weighting(head_fusion, discard_ratio),
        layer=None,
        token_grid=token_grid,
        logits=True,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


@_docs.shared_args(*_docs.METHOD_ARGS, "token_grid", returns="cam")
def gradient_rollout(
    model,
    inputs,
    target=None,
    *,
    token_grid=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
):
    """Gradient rollout (Chefer, Gur & Wolf, ICCV 2021, "Generic
    attention-model explainability"): attention weighted by its gradient,
    through every block, for one class.

    Starting from `R = I`, per block, with `A` its attention probabilities
    and `dA` the gradient of the score with respect to them,
    `R <- R + mean_heads(relu(dA * A)) @ R`. The map is the first (class)
    token's row of `R` over the patch tokens, laid out on the token grid
    and upsampled to the input; for text, over the tokens.

    Args:

    Returns:

    Cost: one forward and one backward pass per input, with the attention
    computed explicitly.
    """
    _attention.check_attention_layers(model)
    return _cam.cam(
        model,
        inputs,
        target,
        _gradient_rollout_weighting,
        layer=None,
        token_grid=token_grid,
        logits=logits,
        normalize=normalize,
        batch_size=batch_size,
        progress=progress,
    )


def _attention_layer(model, layer):
    """(path, MultiHeadAttention) named by `layer`: the layer itself or the
    block around exactly one; None is the model's last."""
    found = _attention.check_attention_layers(model)
    if layer is None:
        return found[-1]
    path, chosen = _layers.find_layer(model, layer)
    inside = [(p, a) for p, a in found if p == path or p.startswith(path + "/")]
    if len(inside) != 1:
        raise ValueError(
            "`layer` must be a MultiHeadAttention layer or a block that "
            f"holds exactly one; {path!r} ({type(chosen).__name__}) holds "
            f"{len(inside)}: {', '.join(p for p, _ in inside) or 'none'}. "
            f"Received: layer={layer if isinstance(layer, str) else path!r}"
        )
    return inside[0]


def attention_maps(
    model, inputs, layer=None, *, token_grid=None, batch_size=64, progress=False
):
    """The attention of the first (class) token, per head, in one block: the
    figure of the DINO paper.

    Args:
        model: As in `attention_rollout`.
        inputs: As in `attention_rollout`.
        layer: A `MultiHeadAttention` layer, or a block that holds exactly
            one, by name, path or object. Defaults to `None`: the model's
            last attention layer.
        token_grid: As in `attention_rollout`.
        batch_size: Inputs per pass. Defaults to 64.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        float32 array of shape `(batch, heads, rows, cols)`: each head's
        attention probabilities from the first token to the patch tokens,
        on their grid (not upsampled, not normalized; over the patches they
        sum to at most 1, the rest going to the prefix tokens). For text,
        `(batch, heads, tokens)`, over every token.

    Cost: one forward pass per input, with the attention computed
    explicitly.
    """
    path, found = _attention_layer(model, layer)
    run = _request.request(
        model,
        inputs,
        None,
        logits=True,
        normalize=False,
        progress=progress,
        batch_size=batch_size,
    )
    queries = _cam.FeatureMap(path, found, of_input=True)
    grid = _cam.located(run, queries, token_grid).grid
    plan = run.plan

    def build(model):
        def fn(xs):
            store = []
            with _attention.recording([found], store):
                plan.forward(model, xs)
            rows = _attention.checked(store[-1:])[0][:, :, 0, :]
            return _over_grid(rows, grid)

        return fn

    key = ("attention maps", run.layout, id(found), grid)
    fn = _backend.compiled(run.model, key, build)
    (maps,) = run.run(run.batch_size, lambda start, xs: [fn(xs)])
    return np.asarray(maps, dtype="float32")
