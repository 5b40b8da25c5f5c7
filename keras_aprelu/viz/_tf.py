"""Everything of viz that is TensorFlow's: compiled functions, tapes and
custom gradients. No other viz module imports TensorFlow.

Compiled functions belong to their model without keeping it alive: the cache
is keyed weakly by the model, the traced Python functions reach the model
only through a weak reference, and each model keeps at most
`MAX_FUNCTIONS_PER_MODEL` of them (least recently used first out).
"""

import collections
import contextlib
import functools
import types
import weakref

import tensorflow as tf

GradientTape = tf.GradientTape
stop_gradient = tf.stop_gradient

MAX_FUNCTIONS_PER_MODEL = 32

# model -> OrderedDict(configuration key -> tf.function); dies with the model.
_FUNCTIONS = weakref.WeakKeyDictionary()


def compiled(model, key, build):
    """The compiled function of `model` for the configuration `key`.

    `build(model)` returns the Python function to compile. It gets the model
    as an argument, at trace time, so that nothing it closes over needs to
    hold the model: what `build` closes over must not be the model, nor
    anything that holds it (the `_inputs.Inputs` or `Request` of a call).
    tests/viz/test_real_models.py frees models after every method.

    Functions are compiled without autograph, so an error raised while
    tracing reaches the user as it was raised, with no "in user code" block.
    """
    per_model = _FUNCTIONS.setdefault(model, collections.OrderedDict())
    if key in per_model:
        per_model.move_to_end(key)
        return per_model[key]
    ref = weakref.ref(model)

    def traced(*args):
        return build(ref())(*args)

    # TensorFlow counts retracings per code object, so the closures of
    # several models would look like one function traced again and again
    # and log a misleading warning. A partial is its own key.
    per_model[key] = _Explained(
        tf.function(functools.partial(traced), autograph=False, reduce_retracing=True)
    )
    while len(per_model) > MAX_FUNCTIONS_PER_MODEL:
        per_model.popitem(last=False)
    return per_model[key]


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


def functions_of(model):
    """The compiled functions cached for `model`, oldest first (for tests)."""
    return dict(_FUNCTIONS.get(model, {}))


class _ById:
    """A cache-key part that compares by identity (for unhashable values)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _ById) and other.value is self.value

    def __hash__(self):
        return id(self.value)


def _part(value):
    try:
        hash(value)
    except TypeError:
        return _ById(value)
    return value


def callable_key(fn):
    """A cache key for a user's callable that a new lambda of the same code
    and the same captured values shares, so that it is not traced again.

    Two functions with the same code object, defaults and closure values
    compute the same thing (unless they read a global that changed in
    between). Other callables are keyed by identity.
    """
    if fn is None:
        return None
    if isinstance(fn, types.FunctionType):
        cells = tuple(_part(cell.cell_contents) for cell in fn.__closure__ or ())
        defaults = tuple(_part(v) for v in fn.__defaults__ or ())
        kwdefaults = tuple(
            (k, _part(v)) for k, v in sorted((fn.__kwdefaults__ or {}).items())
        )
        return ("function", fn.__code__, cells, defaults, kwdefaults)
    return ("callable", _part(fn))


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


def stateless_normal(shape, seed):
    """Standard normal noise of `shape` drawn from the int32 pair `seed`."""
    return tf.random.stateless_normal(shape, seed)


def stateless_randint(count, seed, low, high):
    """`count` int32 values uniform in [low, high) from the int32 pair
    `seed`."""
    return tf.random.stateless_uniform([count], seed, low, high, dtype=tf.int32)


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


def is_dataset(value):
    return isinstance(value, tf.data.Dataset)


def to_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else value
