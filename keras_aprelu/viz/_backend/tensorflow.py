"""viz's backend interface (see `__init__.py`) on TensorFlow: tf.function,
the gradient tape, tf.custom_gradient, and an explanation for TensorFlow's
missing channels_first kernels on CPUs without oneDNN."""

import contextlib
import functools

import tensorflow as tf


class _Explained:
    """A compiled function whose platform errors reach the user explained
    (`explained_errors`); its other attributes are the tf.function's."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function

    def __call__(self, *args):
        with explained_errors():
            return self.function(*args)

    def __getattr__(self, name):
        return getattr(self.function, name)


def _cannot_run_nchw(error):
    text = str(error)
    return "NHWC" in text and "NCHW" in text


CHANNELS_FIRST_UNSUPPORTED = (
    "This model is channels_first, and the TensorFlow of this platform cannot "
    "run channels_first (NCHW) convolutions or pooling on this CPU: "
    "TensorFlow has NCHW kernels on the CPU only with oneDNN, which it turns "
    "on by default on some CPUs only. Either set TF_ENABLE_ONEDNN_OPTS=1 in "
    "the environment before TensorFlow is imported (x86 CPUs), or build the "
    "same model channels_last and copy the weights into it with "
    "`set_weights` (convolution kernels have the same shape in both)."
)


@contextlib.contextmanager
def explained_errors():
    """Turns TensorFlow's "only supports the NHWC tensor format" error of a
    channels_first model into one message that says why and what to do."""
    try:
        yield
    except tf.errors.UnimplementedError as error:
        if _cannot_run_nchw(error):
            raise RuntimeError(CHANNELS_FIRST_UNSUPPORTED) from error
        raise


@functools.cache
def runs_channels_first():
    """Whether this TensorFlow runs a channels_first (NCHW) convolution on
    the CPU: False where it runs without oneDNN (on AMD CPUs by default, or
    with TF_ENABLE_ONEDNN_OPTS=0). One tiny convolution, run once."""
    x = tf.zeros((1, 1, 3, 3))
    try:
        with tf.device("CPU:0"):
            tf.nn.conv2d(x, tf.zeros((1, 1, 1, 1)), 1, "VALID", data_format="NCHW")
    except tf.errors.UnimplementedError as error:
        if _cannot_run_nchw(error):
            return False
        raise
    return True


def compile(function, model_ref):
    """`function` as a tf.function, without autograph, so that an error
    raised while tracing reaches the user as it was raised, with no "in
    user code" block. Variables are read at run time, so a map always comes
    from the current weights."""
    del model_ref  # tf.function reads the variables it captures at run time
    return _Explained(tf.function(function, autograph=False, reduce_retracing=True))


def grad(fn, args, tap=False):
    args = list(args)
    taps = []

    def tapped(value):
        if tap:
            tape.watch(value)
            taps.append(value)
        return value

    with tf.GradientTape() as tape:
        if not tap:
            tape.watch(args)
        scores, aux = fn(args, tapped)
    wrt = taps if tap else args
    grads = tape.gradient(
        scores, wrt, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    return (scores, aux, None, grads) if tap else (scores, aux, grads, [])


def with_rule(forward, mode, elementwise=True):
    """Wraps `forward(x, ...)` so that its gradient follows `mode`.

    - "guided": the activation's own backward rule applied to the positive
      part of the upstream gradient, dx = f'(x) * relu(dy) (for a
      non-elementwise forward such as Maxout: its vector-Jacobian product of
      relu(dy)).
    - "deconvnet": dx = relu(dy) for an elementwise forward; a
      non-elementwise one routes relu(dy) through its own backward.

    Any variables the forward reads get a zero gradient.
    """

    def wrapped(x, *args, **kwargs):
        @tf.custom_gradient
        def f(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = forward(x, *args, **kwargs)

            def grad(dy, variables=None):
                positive = tf.nn.relu(dy)
                if mode == "deconvnet" and elementwise:
                    dx = positive
                else:
                    dx = tape.gradient(y, x, output_gradients=positive)
                if variables:
                    return dx, [tf.zeros_like(v) for v in variables]
                return dx

            return y, grad

        return f(x)

    return wrapped


def map_fn(fn, elements, dtype="float32", sequential=False):
    """`fn` over the first axis of `elements`; `sequential` runs one
    element at a time, so that only one element's intermediates are held in
    memory."""
    return tf.map_fn(
        fn,
        elements,
        fn_output_signature=tf.as_dtype(dtype),
        parallel_iterations=1 if sequential else None,
    )
