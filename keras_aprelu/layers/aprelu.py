import keras
from keras import ops

from keras_aprelu import _checks
from keras_aprelu import _ops


@keras.saving.register_keras_serializable(package="keras_aprelu")
class APReLU(keras.layers.Layer):
    """Adaptively parametric ReLU: a negative slope per sample and channel.

    A small sub-network looks at each sample and sets the negative slopes
    of its channels. It takes the global averages of min(x, 0) and of
    relu(x) over every axis but the batch and channel axes, concatenates
    them (negative part first) and runs them through Dense, BatchNorm,
    ReLU, Dense, BatchNorm and a sigmoid. The result, alpha in (0, 1) with
    shape (batch, C), is the slope of each channel of that sample.

    Formula:

    ```
    z     = concat(mean(min(x, 0)), mean(relu(x)))        # (batch, 2C)
    alpha = sigmoid(BN(Dense_C(relu(BN(Dense_H(z))))))    # (batch, C)
    f(x)  = relu(x) + alpha * min(x, 0)
    ```

    With the default width H = C the layer has 3C^2 + 6C trainable weights
    and 4C batch-norm statistics.

    Args:
        axis: The channel axis. Defaults to `-1`; use `1` for
            channels-first data.
        hidden_units: Width H of the hidden Dense layer. Defaults to `None`,
            meaning C, as in the paper.
        kernel_initializer: Initializer of both Dense kernels. Defaults to
            `"he_normal"`, as the authors' TFLearn code
            (`variance_scaling`).
        kernel_regularizer: Regularizer of both Dense kernels. Defaults to
            `None`. The authors' TFLearn code puts a weight decay of 1e-4 on
            them in TFLearn's convention (1e-4 * sum(w**2) / 2), which is
            `keras.regularizers.L2(5e-5)`.
        batch_norm_epsilon: The epsilon of both batch-norm layers. Defaults
            to `1e-3`, Keras's; the authors' TFLearn code uses `1e-5`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A floating-point tensor.
        training: Whether the batch-norm layers use the statistics of the
            batch (`True`) or their moving averages.

    Input shape:
        Rank 2 (Dense outputs, where the averages are the values themselves)
        or more, batch first, with a known channel size. Spatial sizes may
        be unknown and change from call to call.

    Output shape:
        The input shape.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_aprelu
    >>> layer = keras_aprelu.APReLU()
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 5, 8)).astype("float32")
    >>> tuple(layer(x).shape)
    (2, 5, 5, 8)
    >>> layer.count_params()  # 3 * 8**2 + 6 * 8 trainable, 4 * 8 statistics
    272
    >>> alpha = keras.ops.convert_to_numpy(layer.slopes(x))  # (batch, C)
    >>> alpha.shape, bool(np.all((alpha > 0) & (alpha < 1)))
    ((2, 8), True)

    Reference:
        M. Zhao, S. Zhong, X. Fu, B. Tang, S. Dong and M. Pecht, "Deep
        Residual Networks with Adaptively Parametric Rectifier Linear Units
        for Fault Diagnosis", IEEE Transactions on Industrial Electronics,
        68(3), 2020 (Fig. 3a). The slope per sample and channel follows the
        authors' TFLearn code for MNIST (zhao62/Adaptively-Parametric-ReLU,
        `ResNet_APReLU_TFLearn.py`), as do the pooling, the width H = C and
        the batch-norm momentum of 0.9; their Keras script for CIFAR-10
        learns one slope per sample, shared by all channels. To configure
        the layer as their TFLearn code, pass
        `kernel_regularizer=keras.regularizers.L2(5e-5)` and
        `batch_norm_epsilon=1e-5`; the defaults stay as they are so that
        saved models load unchanged.
    """

    def __init__(
        self,
        axis=-1,
        hidden_units=None,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        batch_norm_epsilon=1e-3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.axis = _checks.check_int_axis(axis)
        self.hidden_units = _checks.check_positive_int(
            hidden_units, "hidden_units", allow_none=True
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.batch_norm_epsilon = _checks.check_positive_float(
            batch_norm_epsilon, "batch_norm_epsilon"
        )
        self.supports_masking = True

    def build(self, input_shape):
        rank = _checks.check_rank(input_shape, self.name)
        channel_axis = _checks.normalize_axis(self.axis, rank)
        channels = _checks.known_channels(input_shape, channel_axis, self.name)
        self._channel_axis = channel_axis
        self._pool_axes = [a for a in range(1, rank) if a != channel_axis]
        self._built_shape = tuple(
            channels if a == channel_axis else None for a in range(rank)
        )
        hidden = self.hidden_units or channels

        def dense(units, name):
            return keras.layers.Dense(
                units,
                kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name=name,
            )

        def batch_norm(name):
            return keras.layers.BatchNormalization(
                momentum=0.9,
                epsilon=self.batch_norm_epsilon,
                dtype=self.dtype_policy,
                name=name,
            )

        self.dense_1 = dense(hidden, "dense_1")
        self.dense_1.build((None, 2 * channels))
        self.batch_norm_1 = batch_norm("batch_norm_1")
        self.batch_norm_1.build((None, hidden))
        self.dense_2 = dense(channels, "dense_2")
        self.dense_2.build((None, hidden))
        self.batch_norm_2 = batch_norm("batch_norm_2")
        self.batch_norm_2.build((None, channels))

    def call(self, inputs, training=None):
        _checks.check_built_shape(inputs.shape, self._built_shape, self.name)
        inputs = _ops.floating(inputs, self.compute_dtype)
        inputs, alpha = self._slopes(inputs, training)
        shape = _ops.slope_shape(
            len(inputs.shape),
            self._channel_axis,
            self._built_shape[self._channel_axis],
        )
        return _ops.parametric_relu(inputs, ops.reshape(alpha, shape), fused=True)

    def slopes(self, inputs, training=False):
        """Returns the negative slopes alpha of each sample, shape (batch, C).

        Args:
            inputs: A batch the layer could be called on.
            training: Whether batch norm uses the batch's statistics.
                Defaults to `False`, the moving averages, as in inference.
        """
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        if not self.built:
            self.build(inputs.shape)
        _checks.check_built_shape(inputs.shape, self._built_shape, self.name)
        return self._slopes(inputs, training)[1]

    def _slopes(self, inputs, training):
        # Returns the inputs as passed through the pooling kernel, which the
        # output stage must use (see `_ops.signed_means`), and the slopes.
        inputs, negative, positive = _ops.signed_means(inputs, self._pool_axes)
        z = ops.concatenate([negative, positive], axis=-1)
        z = ops.relu(self.batch_norm_1(self.dense_1(z), training=training))
        z = self.batch_norm_2(self.dense_2(z), training=training)
        return inputs, ops.sigmoid(z)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "hidden_units": self.hidden_units,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "batch_norm_epsilon": self.batch_norm_epsilon,
            }
        )
        return config

    def compute_output_shape(self, input_shape):
        return input_shape
