import keras
from keras import ops

from keras_aprelu import _checks
from keras_aprelu import _ops


@keras.saving.register_keras_serializable(package="keras_aprelu")
class PReLU(keras.layers.Layer):
    """Parametric ReLU with one learned slope per channel.

    Like `keras.layers.PReLU`, but with the sharing of He et al. and PyTorch
    by default: one slope per channel along `axis`, shared over every other
    non-batch axis, so the layer has C weights and accepts inputs whose
    spatial size changes from call to call. `axis=None` learns one slope for
    the whole layer, and `shared_axes` keeps the meaning it has in
    `keras.layers.PReLU`, with negative indices counted from the end of the
    input's shape (`keras.layers.PReLU` shifts them by one).

    Formula:

    ```
    f(x) = x          if x > 0
    f(x) = alpha * x  otherwise
    ```

    Args:
        alpha_initializer: Initializer of the slopes: a float for a constant,
            or any `keras.initializers` identifier. Defaults to `0.25`.
        alpha_regularizer: Regularizer of the slopes. Defaults to `None`.
        alpha_constraint: Constraint on the slopes. Defaults to `None`.
        axis: The channel axis, which gets one slope per entry, or `None`
            for a single slope. Defaults to `-1`.
        shared_axes: The axes along which slopes are shared, as in
            `keras.layers.PReLU` (1 is the first axis after the batch).
            When given, it replaces `axis`, which must then stay at its
            default. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A floating-point tensor.

    Input shape:
        Any shape of rank >= 2, batch first. The channel axis (and, with
        `shared_axes`, every axis not shared) must have a known size.

    Output shape:
        The input shape.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_aprelu
    >>> layer = keras_aprelu.PReLU()
    >>> keras.ops.convert_to_numpy(layer(np.array([[-2.0, 0.0, 3.0]], "float32")))
    array([[-0.5,  0. ,  3. ]], dtype=float32)
    >>> tuple(keras_aprelu.PReLU()(np.zeros((2, 5, 7, 8), "float32")).shape)
    (2, 5, 7, 8)

    Reference:
        K. He, X. Zhang, S. Ren and J. Sun, "Delving Deep into Rectifiers:
        Surpassing Human-Level Performance on ImageNet Classification",
        ICCV 2015. The slope's gradient is taken as 0 for x > 0 and x
        otherwise; at x = 0 the input's gradient is `alpha`.
    """

    def __init__(
        self,
        alpha_initializer=0.25,
        alpha_regularizer=None,
        alpha_constraint=None,
        axis=-1,
        shared_axes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if alpha_initializer is None:
            # keras.initializers.get(None) is None, which add_weight would
            # silently replace with glorot_uniform.
            raise ValueError(
                "`alpha_initializer` must be a float, an initializer or its "
                "name, such as 0.25 or 'zeros'. Received: alpha_initializer=None"
            )
        if isinstance(alpha_initializer, (int, float)) and not isinstance(
            alpha_initializer, bool
        ):
            alpha_initializer = keras.initializers.Constant(float(alpha_initializer))
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)
        self.axis = _checks.check_int_axis(axis, allow_none=True)
        if shared_axes is not None:
            shared_axes = _checks.check_int_axes(shared_axes, "shared_axes")
            if self.axis != -1:
                raise ValueError(
                    "Pass either `axis` or `shared_axes`, not both: "
                    "`shared_axes` replaces `axis`. Received: "
                    f"axis={axis}, shared_axes={shared_axes}"
                )
        self.shared_axes = shared_axes
        self.supports_masking = True

    def build(self, input_shape):
        rank = _checks.check_rank(input_shape, self.name)
        if self.shared_axes is not None:
            shared = {
                _checks.normalize_axis(a, rank, "shared_axes") for a in self.shared_axes
            }
            own = [a for a in range(1, rank) if a not in shared]
        elif self.axis is None:
            own = []
        else:
            axis = _checks.normalize_axis(self.axis, rank)
            _checks.known_channels(input_shape, axis, self.name)
            own = [axis]
        if any(input_shape[a] is None for a in own):
            raise ValueError(
                f"Layer {self.name} learns a slope for every entry of the "
                "axes not in `shared_axes`, so their sizes must be known. "
                f"Received: input_shape={tuple(input_shape)}, "
                f"shared_axes={self.shared_axes}"
            )
        self._built_shape = tuple(
            input_shape[a] if a in own else None for a in range(rank)
        )
        param_shape = tuple(size or 1 for size in self._built_shape[1:])
        self.alpha = self.add_weight(
            shape=param_shape,
            name="alpha",
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )

    def call(self, inputs):
        _checks.check_built_shape(inputs.shape, self._built_shape, self.name)
        inputs = _ops.floating(inputs, self.compute_dtype)
        return _ops.parametric_relu(inputs, ops.convert_to_tensor(self.alpha))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": keras.initializers.serialize(
                    self.alpha_initializer
                ),
                "alpha_regularizer": keras.regularizers.serialize(
                    self.alpha_regularizer
                ),
                "alpha_constraint": keras.constraints.serialize(self.alpha_constraint),
                "axis": self.axis,
                "shared_axes": self.shared_axes,
            }
        )
        return config

    def compute_output_shape(self, input_shape):
        return input_shape
