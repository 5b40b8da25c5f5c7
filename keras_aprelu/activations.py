"""Functional forms of the layers, sharing their kernels.

Each function takes and returns tensors and holds no weights; the layers in
`keras_aprelu` own the weights, the random state and the serialization.
"""

import keras
import numpy as np
from keras import ops

from keras_aprelu import _checks
from keras_aprelu import _ops

__all__ = ["aprelu", "maxout", "prelu", "rrelu"]


def prelu(x, alpha):
    """Parametric ReLU, `relu(x) + alpha * min(x, 0)`.

    Args:
        x: A floating-point tensor.
        alpha: The negative slopes, a scalar or a tensor that broadcasts
            against `x` (for one slope per channel of an NHWC batch, shape
            `(C,)`).

    Returns:
        A tensor of the shape and dtype of `x`. Gradients flow to both `x`
        and `alpha`, through a custom gradient that keeps only the two.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from keras_aprelu import activations
    >>> y = activations.prelu(np.array([-2.0, 3.0], "float32"), 0.1)
    >>> keras.ops.convert_to_numpy(y)
    array([-0.2,  3. ], dtype=float32)
    """
    x = ops.convert_to_tensor(x)
    alpha = ops.convert_to_tensor(alpha, dtype=x.dtype)
    # Unknown sizes broadcast against anything; the rest must agree, and
    # alpha must not grow the shape of x.
    x_shape = tuple(size or 1 for size in x.shape)
    try:
        fits = np.broadcast_shapes(x_shape, tuple(s or 1 for s in alpha.shape))
    except ValueError:
        fits = None
    if fits != x_shape:
        raise ValueError(
            "`alpha` must broadcast to the shape of `x`, which is "
            f"{tuple(x.shape)}. Received: alpha.shape={tuple(alpha.shape)}"
        )
    return _ops.parametric_relu(x, alpha)


def aprelu(x, alpha, axis=-1):
    """The output stage of APReLU, given each sample's slopes.

    `keras_aprelu.APReLU` computes the slopes with its sub-network; this
    applies slopes from anywhere.

    Args:
        x: A floating-point tensor, batch first.
        alpha: Slopes of shape `(batch, C)`, C being the size of `axis`.
        axis: The channel axis of `x`. Defaults to `-1`.

    Returns:
        `relu(x) + alpha * min(x, 0)`, alpha broadcast over every axis but
        the batch and channel axes, with the shape and dtype of `x`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from keras_aprelu import activations
    >>> x = -np.ones((2, 3, 2), "float32")
    >>> y = activations.aprelu(x, np.array([[0.1, 0.2], [0.3, 0.4]], "float32"))
    >>> keras.ops.convert_to_numpy(y)[:, 0]
    array([[-0.1, -0.2],
           [-0.3, -0.4]], dtype=float32)
    """
    x = ops.convert_to_tensor(x)
    alpha = ops.convert_to_tensor(alpha, dtype=x.dtype)
    rank = _checks.check_rank(x.shape, "aprelu")
    axis = _checks.normalize_axis(_checks.check_int_axis(axis), rank)
    if len(alpha.shape) != 2 or alpha.shape[1] != x.shape[axis]:
        raise ValueError(
            f"`alpha` must have shape (batch, {x.shape[axis]}): one slope per "
            f"sample and channel. Received: alpha.shape={tuple(alpha.shape)}"
        )
    shape = _ops.slope_shape(rank, axis, x.shape[axis])
    return _ops.parametric_relu(x, ops.reshape(alpha, shape), fused=True)


def rrelu(x, lower=1 / 8, upper=1 / 3, training=False, seed=None):
    """Randomized leaky ReLU.

    Args:
        x: A floating-point tensor.
        lower: Lower bound of the random slope. Defaults to `1/8`.
        upper: Upper bound of the random slope. Defaults to `1/3`.
        training: If `True`, each element of `x` draws its own slope from
            U(lower, upper); otherwise the slope is (lower + upper) / 2.
            Defaults to `False`.
        seed: An int or a `keras.random.SeedGenerator`, used when
            `training=True`. Defaults to `None`.

    Returns:
        A tensor of the shape and dtype of `x`. At x == 0 the gradient is
        the slope (the drawn one in training, the mean in inference), as in
        `torch.nn.RReLU`, on every backend.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from keras_aprelu import activations
    >>> y = activations.rrelu(np.array([-1.0, 2.0], "float32"), 0.1, 0.3)
    >>> keras.ops.convert_to_numpy(y)
    array([-0.2,  2. ], dtype=float32)
    """
    lower, upper = _checks.check_rrelu_bounds(lower, upper)
    x = ops.convert_to_tensor(x)
    if not training:
        return _ops.leaky_relu(x, (lower + upper) / 2)
    slopes = keras.random.uniform(
        ops.shape(x), minval=lower, maxval=upper, dtype=x.dtype, seed=seed
    )
    return _ops.random_leaky_relu(x, slopes)


def maxout(x, num_units, axis=-1, grouping="contiguous"):
    """Maxout over groups of channels.

    Args:
        x: A tensor of rank >= 2, batch first.
        num_units: Number of groups, which must divide the size of `axis`.
        axis: The channel axis. Defaults to `-1`.
        grouping: `"contiguous"` or `"strided"` (as `tfa.layers.Maxout`);
            see `keras_aprelu.Maxout`. Defaults to `"contiguous"`.

    Returns:
        The maximum of each group, with `num_units` in place of the size of
        `axis`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from keras_aprelu import activations
    >>> y = activations.maxout(np.array([[1.0, 5.0, 2.0, 0.0]], "float32"), 2)
    >>> keras.ops.convert_to_numpy(y)
    array([[5., 2.]], dtype=float32)
    """
    x = ops.convert_to_tensor(x)
    num_units = _checks.check_positive_int(num_units, "num_units")
    _checks.check_grouping(grouping)
    rank = len(x.shape)
    if rank < 2:
        raise ValueError(
            f"`x` must have rank >= 2, batch first. Received: x.shape={tuple(x.shape)}"
        )
    axis = _checks.normalize_axis(_checks.check_int_axis(axis), rank)
    _checks.check_divisible(x.shape[axis], num_units)
    return _ops.maxout(x, num_units, axis, grouping)
