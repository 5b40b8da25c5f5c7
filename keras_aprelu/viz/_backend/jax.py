"""viz's backend interface (see `__init__.py`) on JAX: `jax.jit` over the
model's variables passed as arguments, `jax.grad`, `jax.custom_vjp`."""

import contextlib

import jax
import jax.numpy as jnp
import keras


def compile(function, model_ref):
    """`function` under `jax.jit`, with the model's variables as arguments.

    A jitted function that read the variables directly would bake their
    values in at trace time, and a map would come from the weights of its
    first call. Here every call passes the current values, and the model's
    layers read them through a `keras.StatelessScope`, as
    `Model.stateless_call` does.
    """

    def pure(values, *args):
        variables = model_ref().variables
        with keras.StatelessScope(
            state_mapping=list(zip(variables, values, strict=True))
        ):
            return function(*args)

    jitted = jax.jit(pure)

    def call(*args):
        return jitted([v.value for v in model_ref().variables], *args)

    return call


def grad(fn, args, tap=False):
    args = list(args)

    def summed(args, shifts):
        taken = []

        def tapped(value):
            # Each tapped value gets its own shift, in the order tapped.
            if shifts is None:
                return value
            taken.append(True)
            return value + shifts[len(taken) - 1]

        scores, aux = fn(args, tapped)
        return jnp.sum(scores), (scores, aux)

    shifts = None
    if tap:
        # JAX differentiates with respect to arguments only, so each tapped
        # value gets a zero shift whose gradient is the value's. Their
        # shapes come from an abstract evaluation (tracing only, no compute).
        seen = []

        def probe(args):
            def record(value):
                seen.append(jax.ShapeDtypeStruct(value.shape, value.dtype))
                return value

            return fn(args, record)

        jax.eval_shape(probe, args)
        shifts = [jnp.zeros(s.shape, s.dtype) for s in seen]
        tapped, (scores, aux) = jax.grad(summed, argnums=1, has_aux=True)(args, shifts)
        return scores, aux, None, list(tapped)
    grads, (scores, aux) = jax.grad(summed, has_aux=True)(args, None)
    return scores, aux, grads, []


def with_rule(forward, mode, elementwise=True):
    """Wraps `forward(x, ...)` so that its gradient follows `mode` (see
    `tensorflow.with_rule`). Any variables the forward reads get no
    gradient."""

    def wrapped(x, *args, **kwargs):
        def plain(x):
            return forward(x, *args, **kwargs)

        @jax.custom_vjp
        def ruled(x):
            return plain(x)

        def ruled_forward(x):
            return jax.vjp(plain, x)

        def ruled_backward(pullback, dy):
            positive = jax.nn.relu(dy)
            if mode == "deconvnet" and elementwise:
                return (positive,)
            return pullback(positive)

        ruled.defvjp(ruled_forward, ruled_backward)
        return ruled(x)

    return wrapped


def map_fn(fn, elements, dtype="float32", sequential=False):
    """`fn` over the first axis of `elements`, one element at a time."""
    del dtype, sequential  # lax.map infers the dtype and is sequential
    return jax.lax.map(fn, elements)


def explained_errors():
    return contextlib.nullcontext()


def runs_channels_first():
    return True
