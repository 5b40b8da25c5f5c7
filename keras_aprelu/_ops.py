"""The kernels shared by the layers and the activations, on every backend.

Each kernel is written here once in `keras.ops`, differentiated by the
backend's own autodiff. On TensorFlow, `_tf_ops` replaces it with a kernel
that has a hand-written gradient, where `benchmarks/bench_layers.py` shows
that it pays there (memory, TFLite's PRELU fusion, Maxout's int32 argmax).
On JAX and PyTorch these are differentiated by autodiff, except where the
benchmark measured a hand-written backward (`keras.ops.custom_gradient`)
to pay: Maxout and APReLU's pooling on JAX. On PyTorch the output stage of
PReLU and APReLU runs in PyTorch's own PReLU kernel (`_torch_ops`; README,
"Performance").
`_tf_ops` is imported only under the TensorFlow backend, so
that `import keras_aprelu` never imports TensorFlow under JAX or PyTorch.

The semantics are the same on every backend, including at the kinks: at
x == 0 the input's gradient is the negative slope (PReLU, APReLU, RReLU in
both modes, as PyTorch) and the pooled gradient goes to the negative branch
(APReLU); a Maxout tie sends the whole gradient to the group's first winner.
"""

import keras
from keras import ops


def _tensorflow_kernels():
    """`_tf_ops` under the TensorFlow backend, else None."""
    if keras.config.backend() != "tensorflow":
        return None
    from keras_aprelu import _tf_ops

    return _tf_ops


def floating(x, dtype):
    """`x`, cast to `dtype` if it is not floating point (int images), as
    `keras.layers.PReLU` does on PyTorch; the same on every backend. Keras
    casts floating inputs to a layer's compute dtype itself."""
    if keras.backend.is_float_dtype(keras.backend.standardize_dtype(x.dtype)):
        return x
    return ops.cast(x, dtype)


def parametric_relu(x, alpha, *, fused=False):
    """relu(x) + alpha * min(x, 0), with `alpha` broadcastable to `x`.

    `fused` picks between TensorFlow's two forwards (see `_tf_ops`); the
    other backends fuse elementwise ops themselves and ignore it.
    """
    kernels = _tensorflow_kernels()
    if kernels is not None:
        return kernels.parametric_relu(x, alpha, fused=fused)
    if keras.config.backend() == "torch":
        from keras_aprelu import _torch_ops

        return _torch_ops.parametric_relu(x, alpha)
    return ops.where(x > 0, x, alpha * x)


def signed_means(x, axes):
    """Means of min(x, 0) and of relu(x) over `axes`, and `x` passed through.

    Returns `(x, negative, positive)`; the caller uses the returned `x`
    (on TensorFlow its backward adds the means' gradient in one pass).
    With no `axes` (rank-2 inputs) the "means" are the values themselves.
    """
    kernels = _tensorflow_kernels()
    if kernels is not None:
        return kernels.signed_means(x, axes)
    axes = tuple(sorted(axes))
    if not axes:
        # torch reads an empty `dim` as "every axis": do not reduce at all.
        positive = ops.relu(x)
        return x, x - positive, positive
    if keras.config.backend() == "jax":
        return (x, *_signed_means_by_magnitude(x, axes))
    # mean(min(x, 0)) = mean(x) - mean(relu(x)): one pass fewer, and the
    # gradient at x == 0 goes to the negative branch (relu'(0) = 0).
    positive = _mean(ops.relu(x), axes)
    return x, _mean(x, axes) - positive, positive


def _signed_means_by_magnitude(x, axes):
    """mean(min(x, 0)) and mean(relu(x)) as (mean(x) -/+ mean(|x|)) / 2.

    For JAX: XLA's CPU compiler turns a sum of relu(x) into a kernel that
    reads a materialized tensor of zeros as large as x, and this form, with
    no zero to compare with, took the APReLU CNN's inference from 3.44x to
    1.47x of ReLU's (bench_layers.py, APReLU-relu-means). The hand-written
    backward keeps the gradient of the other backends: at x == 0 it goes to
    the negative branch, where autodiff of |x| would split it in two.
    """
    count = _count(x, axes)

    @ops.custom_gradient
    def means(x):
        total = _mean(x, axes)
        magnitude = _mean(ops.abs(x), axes)

        def grad(*args, upstream=None):
            # The cotangents of (negative, positive).
            d_negative, d_positive = _upstream(args, upstream)
            for axis in axes:
                d_negative = ops.expand_dims(d_negative, axis)
                d_positive = ops.expand_dims(d_positive, axis)
            return ops.where(x > 0, d_positive, d_negative) / count

        return ((total - magnitude) / 2, (total + magnitude) / 2), grad

    return means(x)


def _mean(x, axes):
    # Not keras.ops.mean: it computes float64 in float32 (Keras promotes
    # float64 with "float32" to float32), which the float64 gradient checks
    # catch. Half-precision sums are taken in float32, so as not to overflow.
    dtype = keras.backend.standardize_dtype(x.dtype)
    wide = "float32" if dtype in ("float16", "bfloat16") else dtype
    total = ops.sum(ops.cast(x, wide), axis=axes)
    return ops.cast(total / _count(x, axes), dtype)


def _count(x, axes):
    """The number of elements of `x` that one entry of a mean over `axes`
    pools."""
    count = 1
    for axis in axes:
        count *= x.shape[axis]
    return count


def slope_shape(rank, channel_axis, channels):
    """The shape that broadcasts per-sample slopes, (batch, channels),
    against a rank-`rank` input whose channels lie on `channel_axis`."""
    shape = [1] * rank
    shape[0] = -1
    shape[channel_axis] = channels
    return shape


def _upstream(args, upstream):
    """The upstream gradient a `keras.ops.custom_gradient` backward gets:
    positionally on TensorFlow and JAX, as `upstream=` on PyTorch."""
    return args[0] if upstream is None else upstream


def maxout(x, num_units, axis, grouping):
    """Max over groups of channels along the non-negative `axis`.

    `grouping="contiguous"` gives unit j the channels [j*k, (j+1)*k);
    `grouping="strided"` gives it channels j, j+U, j+2U, ... as
    `tfa.layers.Maxout` did. The output is gathered at the argmax, so that
    the gradient goes to the first winner of a tie, never split.
    """
    kernels = _tensorflow_kernels()
    if kernels is not None:
        return kernels.maxout(x, num_units, axis, grouping)
    shape = list(ops.shape(x))
    group = shape[axis] // num_units
    split = [num_units, group] if grouping == "contiguous" else [group, num_units]
    reduce_axis = axis + 1 if grouping == "contiguous" else axis
    grouped_shape = [-1] + shape[1:axis] + split + shape[axis + 1 :]
    if keras.config.backend() == "jax":
        return _routed_maxout(x, grouped_shape, reduce_axis, group)
    grouped = ops.reshape(x, grouped_shape)
    winner = ops.argmax(grouped, axis=reduce_axis, keepdims=True)
    y = ops.take_along_axis(grouped, winner, axis=reduce_axis)
    return ops.squeeze(y, axis=reduce_axis)


def _routed_maxout(x, grouped_shape, reduce_axis, group):
    """Maxout with a hand-written backward that keeps only the argmax.

    Used on JAX, where XLA otherwise keeps the gather's operands: 1.26x
    faster training and a third of the temporary memory there
    (bench_layers.py). On PyTorch it was slower than autodiff.
    """

    @ops.custom_gradient
    def routed(x):
        grouped = ops.reshape(x, grouped_shape)
        winner = ops.argmax(grouped, axis=reduce_axis)

        def grad(*args, upstream=None):
            dy = _upstream(args, upstream)
            mask = ops.one_hot(winner, group, axis=reduce_axis, dtype=dy.dtype)
            return ops.reshape(mask * ops.expand_dims(dy, reduce_axis), ops.shape(x))

        return ops.max(grouped, axis=reduce_axis), grad

    return routed(x)


def leaky_relu(x, slope):
    """x where x > 0, else slope * x, for a constant float `slope`.

    TensorFlow's and PyTorch's kernels give the gradient `slope` at x == 0;
    `jax.nn.leaky_relu` gives 1 there, so JAX gets the same convention
    written out.
    """
    if keras.config.backend() == "jax":
        return ops.where(x > 0, x, slope * x)
    return ops.leaky_relu(x, negative_slope=slope)


def random_leaky_relu(x, slopes):
    """x where x > 0, else slopes * x, for sampled `slopes` of the shape of x.

    Written as x * m with m held constant, so that autodiff keeps only m
    and computes dy * m: a custom gradient would buy nothing here. At
    x == 0 the gradient is the drawn slope, as in `torch.nn.RReLU`.
    """
    kernels = _tensorflow_kernels()
    if kernels is not None:
        return kernels.random_leaky_relu(x, slopes)
    return x * ops.stop_gradient(ops.where(x > 0, ops.ones_like(slopes), slopes))
