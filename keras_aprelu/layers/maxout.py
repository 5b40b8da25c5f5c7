import keras

from keras_aprelu import _checks
from keras_aprelu import _ops


@keras.saving.register_keras_serializable(package="keras_aprelu")
class Maxout(keras.layers.Layer):
    """Maxout: the maximum over groups of channels.

    The C channels along `axis` are split into `num_units` groups of
    k = C / num_units channels each, and every unit outputs the largest
    value of its group.

    Formula:

    ```
    contiguous: f(x)_j = max(x_{j*k}, x_{j*k+1}, ..., x_{j*k+k-1})
    strided:    f(x)_j = max(x_j, x_{j+U}, ..., x_{j+(k-1)U})
    ```

    Args:
        num_units: Number U of units kept along `axis`; it must divide C.
        axis: The channel axis. Defaults to `-1`.
        grouping: `"contiguous"` (unit j takes channels j*k to j*k+k-1) or
            `"strided"` (unit j takes channels j, j+U, ..., exactly as
            `tfa.layers.Maxout`, for users migrating from TensorFlow
            Addons). Defaults to `"contiguous"`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A tensor of rank >= 2.

    Input shape:
        Any shape of rank >= 2, batch first. The size C along `axis` may be
        unknown when the layer is built (`keras.Input((None, None, None))`);
        each call then checks that `num_units` divides it.

    Output shape:
        The input shape with `num_units` in place of C.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_aprelu
    >>> x = np.array([[1.0, 5.0, 2.0, 0.0, 3.0, 4.0]], "float32")
    >>> y = keras_aprelu.Maxout(2)(x)  # groups (1, 5, 2) and (0, 3, 4)
    >>> keras.ops.convert_to_numpy(y)
    array([[5., 4.]], dtype=float32)
    >>> y = keras_aprelu.Maxout(2, grouping="strided")(x)  # (1, 2, 3), (5, 0, 4)
    >>> keras.ops.convert_to_numpy(y)
    array([[3., 5.]], dtype=float32)

    Reference:
        I. Goodfellow, D. Warde-Farley, M. Mirza, A. Courville and
        Y. Bengio, "Maxout Networks", ICML 2013. The gradient goes to the
        first winner of each group, never split between ties.
    """

    def __init__(self, num_units, axis=-1, grouping="contiguous", **kwargs):
        super().__init__(**kwargs)
        self.num_units = _checks.check_positive_int(num_units, "num_units")
        self.axis = _checks.check_int_axis(axis)
        self.grouping = _checks.check_grouping(grouping)
        self.supports_masking = True

    def build(self, input_shape):
        rank = _checks.check_rank(input_shape, self.name)
        axis = _checks.normalize_axis(self.axis, rank)
        # The channel size may be unknown, as `tfa.layers.Maxout` allowed:
        # each call then checks the size it gets.
        channels = input_shape[axis]
        _checks.check_divisible(channels, self.num_units)
        self._axis = axis
        self._built_shape = tuple(channels if a == axis else None for a in range(rank))

    def call(self, inputs):
        _checks.check_built_shape(inputs.shape, self._built_shape, self.name)
        _checks.check_divisible(inputs.shape[self._axis], self.num_units)
        return _ops.maxout(inputs, self.num_units, self._axis, self.grouping)

    def compute_output_spec(self, inputs):
        # From the shape alone: tracing `call` on a placeholder would have
        # to invent a channel size when it is unknown.
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=inputs.dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_units": self.num_units,
                "axis": self.axis,
                "grouping": self.grouping,
            }
        )
        return config

    def compute_output_shape(self, input_shape):
        output_shape = list(input_shape)
        output_shape[self.axis] = self.num_units
        return tuple(output_shape)
