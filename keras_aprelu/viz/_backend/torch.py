"""viz's backend interface (see `__init__.py`) on PyTorch: eager calls,
`torch.autograd.grad` and a `torch.autograd.Function`.

Nothing here touches the model's autograd state: gradients come from
`torch.autograd.grad`, which returns them instead of accumulating them into
`.grad`; no parameter's `requires_grad` is changed; every tensor that leaves
is detached, so no graph outlives a call; and gradients are enabled only
where they are taken, so viz works inside a user's `torch.no_grad()`.
"""

import contextlib

import keras
import numpy as np
import torch


def _tensor(value):
    if isinstance(value, np.ndarray | np.generic):
        return keras.ops.convert_to_tensor(value)
    return value


def _detached(structure):
    return keras.tree.map_structure(
        lambda v: v.detach() if isinstance(v, torch.Tensor) else v, structure
    )


def compile(function, model_ref):
    """`function`, run eagerly with NumPy arguments as tensors and no
    autograd graph kept (PyTorch has no compiler that pays off for one-off
    maps here). It reads the variables at every call."""
    del model_ref

    def call(*args):
        args = keras.tree.map_structure(_tensor, args)
        with torch.no_grad():
            return _detached(function(*args))

    return call


def grad(fn, args, tap=False):
    taps = []

    def tapped(value):
        if tap:
            if not value.requires_grad:
                # Behind a cut (a stop_gradient): differentiated from here
                # on, as TensorFlow's tape watches it and JAX shifts it.
                value = value.detach().requires_grad_(True)
            taps.append(value)
        return value

    with torch.enable_grad():
        args = [_tensor(a).detach().requires_grad_(not tap) for a in args]
        scores, aux = fn(args, tapped)
        wrt = taps if tap else args
        if scores.requires_grad and wrt:
            grads = torch.autograd.grad(scores.sum(), wrt, allow_unused=True)
        else:  # the scores do not depend on anything differentiated
            grads = [None] * len(wrt)
    grads = [
        torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads, strict=True)
    ]
    scores, aux = _detached(scores), _detached(aux)
    return (scores, aux, None, grads) if tap else (scores, aux, grads, [])


def with_rule(forward, mode, elementwise=True):
    """Wraps `forward(x, ...)` so that its gradient follows `mode` (see
    `tensorflow.with_rule`). Any variables the forward reads get no
    gradient."""

    activation = forward

    def wrapped(x, *args, **kwargs):
        class Ruled(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                with torch.enable_grad():
                    ctx.x = x.detach().requires_grad_(True)
                    ctx.y = activation(ctx.x, *args, **kwargs)
                return ctx.y.detach()

            @staticmethod
            def backward(ctx, dy):
                positive = torch.relu(dy)
                if mode == "deconvnet" and elementwise:
                    dx = positive
                else:
                    with torch.enable_grad():
                        (dx,) = torch.autograd.grad(ctx.y, ctx.x, positive)
                del ctx.x, ctx.y
                return dx

        return Ruled.apply(x)

    return wrapped


def map_fn(fn, elements, dtype="float32", sequential=False):
    """`fn` over the first axis of `elements`, one element at a time."""
    del dtype, sequential
    return torch.stack([fn(element) for element in elements])


def explained_errors():
    return contextlib.nullcontext()


def runs_channels_first():
    return True
