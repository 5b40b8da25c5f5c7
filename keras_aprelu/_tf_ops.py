"""TensorFlow kernels with hand-written gradients, for `_ops` to dispatch to.

This is the only module of the layers that talks to TensorFlow, and `_ops`
imports it only under the TensorFlow backend. Each kernel states what its
custom gradient keeps for the backward pass and why;
`benchmarks/bench_layers.py` measures what that buys against plain autodiff
of the same forward.
"""

import tensorflow as tf


def _sum_to_shape(grad, like):
    """Sums `grad` over the axes along which `like` was broadcast."""
    _, axes = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(grad), s1=tf.shape(like))
    return tf.reshape(tf.reduce_sum(grad, axes), tf.shape(like))


def _fused(fn):
    """Compiles an elementwise kernel with XLA, so that it runs as one pass.

    Without XLA (Keras's default on CPU) every TensorFlow op is a pass over
    memory; these kernels are where the time of the activations goes.
    """
    return tf.function(fn, jit_compile=True, autograph=False, reduce_retracing=True)


@_fused
def _parametric_relu_forward(x, alpha):
    return tf.where(x > 0, x, alpha * x)


@_fused
def _parametric_relu_input_grad(x, alpha, dy):
    return tf.where(x > 0, dy, dy * alpha)


@_fused
def _signed_means_grad(x, dx, d_negative, d_positive):
    return dx + tf.where(x > 0, d_positive, d_negative)


def parametric_relu(x, alpha, *, fused=False):
    """relu(x) + alpha * min(x, 0), with `alpha` broadcastable to `x`.

    The backward keeps only `x` and `alpha`; autodiff of the same forward also
    keeps relu(-x) and its masks. With `fused=False` the forward is written as
    `relu(x) + (-alpha) * relu(-x)`, the pattern TFLite's converter fuses into
    its native PRELU op (`relu(x) - alpha * relu(-x)` is not matched);
    `fused=True` computes it in one XLA pass instead.
    Both arguments are read into plain tensors first, so that a variable's
    read is what the gradient reaches, not the variable itself.
    """
    x = tf.convert_to_tensor(x)
    alpha = tf.convert_to_tensor(alpha)

    @tf.custom_gradient
    def _parametric_relu(x, alpha):
        if fused:
            y = _parametric_relu_forward(x, alpha)
        else:
            y = tf.nn.relu(x) + (-alpha) * tf.nn.relu(-x)

        def grad(dy):
            dx = _parametric_relu_input_grad(x, alpha, dy)
            dalpha = _sum_to_shape(dy * tf.minimum(x, 0), alpha)
            return dx, dalpha

        return y, grad

    return _parametric_relu(x, alpha)


def signed_means(x, axes):
    """Means of min(x, 0) and of relu(x) over `axes`, and `x` passed through.

    Returns `(x, negative, positive)`. Whoever uses both `x` and the means
    (APReLU does) should use the returned `x`: its backward then adds the
    means' gradient to that of `x` in one fused pass, where autodiff would
    spend a pass on the means' gradient and another on the sum. It keeps only
    `x` for the backward: each element gets the gradient of the branch it fell
    in, divided by the number of pooled elements; at x == 0 the negative
    branch takes it, as `tf.minimum` does.
    """
    axes = sorted(axes)
    axes_tensor = tf.constant(axes, dtype=tf.int32)

    @tf.custom_gradient
    def _signed_means(x):
        # mean(min(x, 0)) = mean(x) - mean(relu(x)): one pass fewer.
        positive = tf.reduce_mean(tf.nn.relu(x), axes_tensor)
        negative = tf.reduce_mean(x, axes_tensor) - positive

        def grad(dx, d_negative, d_positive):
            shape = tf.shape(x)
            count = tf.cast(tf.reduce_prod(tf.gather(shape, axes_tensor)), x.dtype)
            d_negative = d_negative / count
            d_positive = d_positive / count
            for axis in axes:
                d_negative = tf.expand_dims(d_negative, axis)
                d_positive = tf.expand_dims(d_positive, axis)
            if dx is None:
                dx = tf.zeros_like(x)
            return _signed_means_grad(x, dx, d_negative, d_positive)

        return (tf.identity(x), negative, positive), grad

    return _signed_means(tf.convert_to_tensor(x))


def maxout(x, num_units, axis, grouping):
    """Max over groups of channels along the non-negative `axis`.

    `grouping="contiguous"` gives unit j the channels [j*k, (j+1)*k);
    `grouping="strided"` gives it channels j, j+U, j+2U, ... as
    `tfa.layers.Maxout` did. The backward keeps only the int32 index of the
    winner in each group (the size of the output), where autodiff of
    `reduce_max` keeps the input and the output and splits the gradient
    between ties; here the first winner takes all of it.
    """
    shape = tf.shape(x)
    static = x.shape
    # A graph traced with an unknown channel size splits it at run time.
    channels = static[axis] if static[axis] is not None else shape[axis]
    group = channels // num_units
    if grouping == "contiguous":
        split = [num_units, group]
        reduce_axis = axis + 1
    else:
        split = [group, num_units]
        reduce_axis = axis
    grouped_shape = tf.concat([shape[:axis], split, shape[axis + 1 :]], axis=0)

    @tf.custom_gradient
    def _maxout(x):
        grouped = tf.reshape(x, grouped_shape)
        winner = tf.argmax(grouped, axis=reduce_axis, output_type=tf.int32)
        y = tf.reduce_max(grouped, axis=reduce_axis)

        def grad(dy):
            mask = tf.one_hot(winner, group, axis=reduce_axis, dtype=dy.dtype)
            return tf.reshape(mask * tf.expand_dims(dy, reduce_axis), shape)

        return y, grad

    y = _maxout(x)
    out_static = list(static)
    out_static[axis] = num_units
    y.set_shape(out_static)
    return y


def random_leaky_relu(x, slopes):
    """x where x > 0, else slopes * x, for sampled `slopes` of the shape of x.

    Written as x * m with m = where(x > 0, 1, slopes) held constant: autodiff
    of that product already keeps only m and computes dy * m, so a custom
    gradient would buy nothing here (`benchmarks/bench_layers.py` shows it).
    """
    m = tf.stop_gradient(tf.where(x > 0, tf.ones_like(slopes), slopes))
    return x * m
