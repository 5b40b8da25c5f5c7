"""Gradients on whichever backend Keras runs, for tests that run on all three.

`vjp` differentiates with the backend's own autodiff (TensorFlow's tape,
`jax.vjp`, `torch.autograd`); `numerical_vjp` takes central differences of
the same function in NumPy terms, so each checks the other. `weight_vjp`
does the same for a layer's trainable weights through `stateless_call`.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np


def backend():
    return keras.config.backend()


def tensorflow_only(why):
    """Skips a test on the other backends, saying why it needs TensorFlow."""
    import pytest

    return pytest.mark.skipif(
        backend() != "tensorflow", reason=f"needs the TensorFlow backend: {why}"
    )


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def vjp(fn, args, upstream):
    """Gradients of sum(fn(*args) * upstream) with respect to every arg."""
    args = [np.asarray(a) for a in args]
    upstream = np.asarray(upstream)
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            out = fn(*tensors)
            loss = tf.reduce_sum(out * tf.constant(upstream, dtype=out.dtype))
        grads = tape.gradient(loss, tensors)
    elif name == "jax":
        import jax
        import jax.numpy as jnp

        out, pullback = jax.vjp(fn, *[jnp.asarray(a) for a in args])
        grads = pullback(jnp.asarray(upstream, dtype=out.dtype))
    elif name == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in args]
        out = fn(*tensors)
        torch.sum(out * torch.tensor(upstream, dtype=out.dtype)).backward()
        grads = [t.grad for t in tensors]
    else:
        raise NotImplementedError(name)
    return [
        np.zeros_like(a) if g is None else to_numpy(g)
        for a, g in zip(args, grads, strict=True)
    ]


def numerical_vjp(fn, args, upstream, eps=1e-6):
    """Central differences of sum(fn(*args) * upstream), element by element."""
    args = [np.array(a, dtype="float64") for a in args]
    upstream = np.asarray(upstream, dtype="float64")

    def loss(values):
        # As tensors: Keras may read a bare float64 array as floatx.
        tensors = [keras.ops.convert_to_tensor(v, dtype="float64") for v in values]
        return float(np.sum(to_numpy(fn(*tensors)).astype("float64") * upstream))

    grads = []
    for which, arg in enumerate(args):
        grad = np.zeros_like(arg)
        for index in np.ndindex(arg.shape):
            for sign in (1, -1):
                shifted = [a.copy() for a in args]
                shifted[which][index] += sign * eps
                grad[index] += sign * loss(shifted) / (2 * eps)
        grads.append(grad)
    return grads


def layer_function(layer, x, **call_kwargs):
    """f(x, *trainable) of a built layer, its non-trainable state held fixed.

    Returns the function and the current trainable values, as NumPy arrays,
    for `vjp` and `numerical_vjp` with respect to the weights.
    """
    non_trainable = [to_numpy(w) for w in layer.non_trainable_variables]
    trainable = [to_numpy(w) for w in layer.trainable_variables]

    def fn(x, *weights):
        out, _ = layer.stateless_call(list(weights), non_trainable, x, **call_kwargs)
        return out

    return fn, [np.asarray(x)] + trainable


def run_for_json(command, **kwargs):
    """Runs `command`, capturing its output; asserts that it succeeded and
    returns what the last line it printed holds, read as JSON."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_python(code, **env):
    """Runs `code` in a new Python with `env` added to the environment."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        timeout=300,
    )
