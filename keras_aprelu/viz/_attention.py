"""A transformer's attention, read from its `MultiHeadAttention` layers.

keras-hub's blocks (ViT, DeiT, DINOv2, BERT and their kin) compute their
attention in `keras.layers.MultiHeadAttention` (or a subclass), which
materializes the probabilities only when asked to return them.
`recording` asks, for one computation: it patches the instances'
`_compute_attention` to take the explicit path and their `_masked_softmax`
to record (and, for gradients, tap) the probabilities, and undoes both in
`finally`, as every patch in viz is undone.

A block is the outermost layer around one attention layer that holds no
other (`ViTEncoderBlock`, BERT's `TransformerEncoder`; for an attention
layer placed directly in a model, the attention layer itself).
"""

import contextlib
import inspect

import keras

from keras_aprelu.viz import _layers


def attention_layers(model):
    """(path, layer) of every `MultiHeadAttention` the model holds, at any
    depth, in the order the model holds them."""
    found, seen = [], set()
    for path, layer in _layers.walk_all(model):
        if isinstance(layer, keras.layers.MultiHeadAttention) and id(layer) not in seen:
            seen.add(id(layer))
            found.append((path, layer))
    return found


def check_attention_layers(model):
    """The attention layers, or a ValueError that says why there are none."""
    _layers.check_model(model)
    found = attention_layers(model)
    if not found:
        raise ValueError(
            "`model` holds no `keras.layers.MultiHeadAttention` layer, so it "
            "has no attention to roll out (keras-hub's ViT, DeiT, DINOv2 and "
            "BERT blocks use one). For a CNN, use a CAM or a gradient "
            f"method. Received: model={model.name!r}"
        )
    return found


def blocks(model):
    """(path, layer) of the block of each attention layer, in the order the
    model holds them (empty for a model without attention)."""
    found = attention_layers(model)
    layers = dict(_layers.walk_all(model))
    attention_paths = [path for path, _ in found]
    result = []
    for path, layer in found:
        block = (path, layer)
        parts = path.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            held = [p for p in attention_paths if p.startswith(ancestor + "/")]
            candidate = layers[ancestor]
            if len(held) == 1 and not isinstance(candidate, keras.Model):
                block = (ancestor, candidate)
                break
        result.append(block)
    return result


def last_block(model):
    """(path, layer) of the block of the model's last attention layer, or
    None for a model without attention."""
    found = blocks(model)
    return found[-1] if found else None


@contextlib.contextmanager
def recording(layers, store, tap=None):
    """While active, each of `layers` (MultiHeadAttention) appends its
    attention probabilities, (batch, heads, queries, keys), to the list
    `store` on every call, after passing them through `tap` (see
    `_backend.grad`), so that their gradient can be taken."""
    with contextlib.ExitStack() as stack:
        for layer in layers:
            compute = layer._compute_attention
            signature = inspect.signature(compute)

            def compute_attention(*args, _original=compute, _sig=signature, **kw):
                bound = _sig.bind(*args, **kw)
                bound.arguments["return_attention_scores"] = True
                return _original(*bound.args, **bound.kwargs)

            def masked_softmax(*args, _original=layer._masked_softmax, **kw):
                probabilities = _original(*args, **kw)
                if tap is not None:
                    probabilities = tap(probabilities)
                store.append(probabilities)
                return probabilities

            stack.enter_context(
                _layers.patched(layer, "_compute_attention", compute_attention)
            )
            stack.enter_context(
                _layers.patched(layer, "_masked_softmax", masked_softmax)
            )
        yield store


def checked(store):
    """The recorded probabilities, float32, each (batch, heads, T, T)."""
    if not store:
        raise ValueError(
            "No attention layer of the model ran, so there is no attention "
            "to roll out. Received: a model whose MultiHeadAttention layers "
            "were not called"
        )
    tokens = store[0].shape[-1]
    for probabilities in store:
        if probabilities.shape[-2:] != (tokens, tokens):
            raise ValueError(
                "Rollout multiplies self-attention over the same tokens, "
                "(tokens, tokens) in every block. Received: attention of "
                f"shape {tuple(probabilities.shape)} after "
                f"{tuple(store[0].shape)}"
            )
    return [keras.ops.cast(p, "float32") for p in store]


# How the heads of a block are fused, by name.
HEAD_FUSIONS = {"mean": keras.ops.mean, "max": keras.ops.max, "min": keras.ops.min}


def fuse_heads(probabilities, head_fusion):
    """(batch, heads, T, T) -> (batch, T, T) by one of `HEAD_FUSIONS`."""
    return HEAD_FUSIONS[head_fusion](probabilities, axis=1)


def discard(fused, ratio):
    """Sets the `ratio` smallest entries of each sample's (T, T) attention
    to 0, keeping the class token's own entry (vit-explain's rule)."""
    tokens = fused.shape[-1]
    count = int(tokens * tokens * ratio)
    if count == 0:
        return fused
    flat = keras.ops.reshape(fused, (-1, tokens * tokens))
    rank = keras.ops.argsort(keras.ops.argsort(flat, axis=-1), axis=-1)
    position = keras.ops.arange(tokens * tokens)[None, :]
    dropped = keras.ops.logical_and(rank < count, position != 0)
    flat = keras.ops.where(dropped, keras.ops.zeros_like(flat), flat)
    return keras.ops.reshape(flat, (-1, tokens, tokens))


def rollout(store, head_fusion, discard_ratio):
    """Abnar & Zuidema (2020): per block, the heads fused, 0.5 A + 0.5 I
    with rows renormalized, multiplied over the blocks in the order they
    ran. Returns the first token's row, (batch, T)."""
    attentions = checked(store)
    tokens = attentions[0].shape[-1]
    eye = keras.ops.eye(tokens, dtype="float32")
    rows = []
    for probabilities in attentions:
        fused = discard(fuse_heads(probabilities, head_fusion), discard_ratio)
        # 0.5 A + 0.5 I, rows renormalized: the halves cancel.
        a = fused + eye
        rows.append(a / keras.ops.sum(a, axis=-1, keepdims=True))
    # Only the first row of A_L ... A_1 is read: a row vector times each
    # block's matrix, from the last block down, instead of whole products.
    result = rows[-1][:, :1, :]
    for a in reversed(rows[:-1]):
        result = keras.ops.matmul(result, a)
    return result[:, 0, :]


def gradient_rollout(store, grads):
    """Chefer, Gur & Wolf (ICCV 2021): R = I, then per block
    R <- R + mean_heads(relu(dA * A)) R. Returns the first token's row,
    (batch, T)."""
    attentions = checked(store)
    tokens = attentions[0].shape[-1]
    relevance = None
    for probabilities, grad in zip(attentions, grads, strict=True):
        weighted = keras.ops.mean(
            keras.ops.relu(keras.ops.cast(grad, "float32") * probabilities), axis=1
        )
        if relevance is None:
            relevance = keras.ops.eye(tokens, dtype="float32") + weighted
        else:
            relevance = relevance + keras.ops.matmul(weighted, relevance)
    return relevance[:, 0, :]
