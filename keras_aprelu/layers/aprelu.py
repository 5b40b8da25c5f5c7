import inspect
import warnings

import keras
from keras import ops

from keras_aprelu import _checks
from keras_aprelu import _ops


def _layer_norm(layer, name):
    return keras.layers.LayerNormalization(
        epsilon=layer.epsilon, dtype=layer.dtype_policy, name=name
    )


def _batch_norm(layer, name):
    return keras.layers.BatchNormalization(
        momentum=0.9, epsilon=layer.epsilon, dtype=layer.dtype_policy, name=name
    )


def _has_batch_renorm():
    # Keras 3 dropped `renorm` and brought it back in 3.14.
    parameters = inspect.signature(keras.layers.BatchNormalization).parameters
    return "renorm" in parameters


def _batch_renorm(layer, name):
    return keras.layers.BatchNormalization(
        momentum=0.9,
        epsilon=layer.epsilon,
        renorm=True,
        renorm_clipping={"rmax": 3.0, "rmin": 1 / 3, "dmax": 5.0},
        renorm_momentum=0.9,
        dtype=layer.dtype_policy,
        name=name,
    )


def _no_norm(layer, name):
    return keras.layers.Identity(dtype=layer.dtype_policy, name=name)


# What `APReLU(normalization=...)` may be, and the layer each one builds.
NORMALIZATIONS = {
    "layer": _layer_norm,
    "none": _no_norm,
    "batch": _batch_norm,
    "batch_renorm": _batch_renorm,
}


@keras.saving.register_keras_serializable(package="keras_aprelu")
class APReLU(keras.layers.Layer):
    """Adaptively parametric ReLU: a negative slope per sample and channel.

    A small sub-network looks at each sample and sets the negative slopes
    of its channels. It takes the global averages of min(x, 0) and of
    relu(x) over every axis but the batch and channel axes, concatenates
    them (negative part first) and runs them through Dense, a
    normalization, ReLU, Dense, a normalization and a sigmoid. The result,
    alpha in (0, 1) with shape (batch, C), is the slope of each channel of
    that sample.

    The paper normalizes with batch norm (`normalization="batch"`). There
    the slopes of a sample depend on the rest of its batch in training, and
    on moving averages at inference, which lag the final weights; the
    pooled averages barely vary across a batch, so a small lag is a large
    error in units of the batch's spread. A model can then train well and
    infer badly (the Layers guide, "APReLU in inference mode", has the
    measurements). The default,
    `normalization="none"`, drops the normalization, as squeeze-and-
    excitation gates do (Dense, ReLU, Dense, sigmoid): each sample's slopes
    depend on that sample alone, so `predict` and `evaluate` compute
    exactly what `fit` trained, on any batch size.

    Formula:

    ```
    z     = concat(mean(min(x, 0)), mean(relu(x)))        # (batch, 2C)
    alpha = sigmoid(N(Dense_C(relu(N(Dense_H(z))))))      # (batch, C)
    f(x)  = relu(x) + alpha * min(x, 0)
    ```

    N is the normalization, the identity by default. With the default
    width H = C the layer has 3C^2 + 2C trainable weights (3C^2 + 6C with
    a normalization), and the batch norms of `"batch"` keep 4C
    statistics.

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
        normalization: The normalization N of the sub-network, at both
            places. `"none"` (the default): none, the same in training and
            inference. `"layer"`: layer normalization over the units of
            each sample, also the same in both. `"batch"`:
            batch normalization with momentum 0.9, the paper's (and the
            only one in release 0.1.0, whose saved files load with it).
            `"batch_renorm"`: batch renormalization (Ioffe, 2017), with
            r in [1/3, 3] and d in [-5, 5]. With either batch norm, call
            `keras_aprelu.recalibrate_batch_norm` after `fit`.
        epsilon: The epsilon of both normalizations. Defaults to `1e-3`,
            Keras's; the authors' TFLearn code uses `1e-5`. (Release 0.1.0
            called it `batch_norm_epsilon`, still accepted with a
            `DeprecationWarning`.)
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A floating-point tensor.
        training: With batch norms in the sub-network, whether they use
            the statistics of the batch (`True`) or their moving averages.
            The other normalizations ignore it.

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
    >>> layer.count_params()  # 3 * 8**2 + 2 * 8
    208
    >>> alpha = keras.ops.convert_to_numpy(layer.slopes(x))  # (batch, C)
    >>> alpha.shape, bool(np.all((alpha > 0) & (alpha < 1)))
    ((2, 8), True)

    Reference:
        M. Zhao, S. Zhong, X. Fu, B. Tang, S. Dong and M. Pecht, "Deep
        Residual Networks with Adaptively Parametric Rectifier Linear Units
        for Fault Diagnosis", IEEE Transactions on Industrial Electronics,
        68(3), 2020 (Fig. 3a), with batch norm in the sub-network, which
        is `normalization="batch"` here. The slope per sample and channel follows the
        authors' TFLearn code for MNIST (zhao62/Adaptively-Parametric-ReLU,
        `ResNet_APReLU_TFLearn.py`), as do the pooling, the width H = C and
        the batch-norm momentum of 0.9; their Keras script for CIFAR-10
        learns one slope per sample, shared by all channels. To configure
        the layer as their TFLearn code, pass `normalization="batch"`,
        `kernel_regularizer=keras.regularizers.L2(5e-5)` and
        `epsilon=1e-5`. The default follows the gates of J. Hu, L. Shen
        and G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018. Layer
        normalization: J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer
        Normalization", arXiv:1607.06450, 2016.
    """

    def __init__(
        self,
        axis=-1,
        hidden_units=None,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        normalization="none",
        epsilon=1e-3,
        **kwargs,
    ):
        if "batch_norm_epsilon" in kwargs:
            warnings.warn(
                "`batch_norm_epsilon` is now `epsilon`, the epsilon of either "
                "normalization. Received: batch_norm_epsilon="
                f"{kwargs['batch_norm_epsilon']!r}",
                DeprecationWarning,
                stacklevel=2,
            )
            epsilon = kwargs.pop("batch_norm_epsilon")
        super().__init__(**kwargs)
        self.axis = _checks.check_int_axis(axis)
        self.hidden_units = _checks.check_positive_int(
            hidden_units, "hidden_units", allow_none=True
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.normalization = _checks.check_choice(
            normalization, "normalization", NORMALIZATIONS
        )
        if normalization == "batch_renorm" and not _has_batch_renorm():
            raise ValueError(
                '`normalization="batch_renorm"` needs Keras 3.14 or newer, '
                "whose BatchNormalization has `renorm`. Received: "
                f"normalization={normalization!r} with Keras {keras.__version__}"
            )
        self.epsilon = _checks.check_positive_float(epsilon, "epsilon")
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

        # Built in this order, which is that of the trainable weights, so
        # that the optimizer state of a file saved by release 0.1.0 loads.
        # The attribute names are the weights' paths in a .keras file:
        # "batch_norm_1" and "batch_norm_2" are those of release 0.1.0.
        shapes = ((2 * channels, hidden), (hidden, channels))
        for index, (fan_in, units) in enumerate(shapes, start=1):
            layer = dense(units, f"dense_{index}")
            layer.build((None, fan_in))
            setattr(self, f"dense_{index}", layer)
            name = f"{self.normalization}_norm_{index}"
            norm = NORMALIZATIONS[self.normalization](self, name)
            norm.build((None, units))
            setattr(self, name, norm)

    def normalization_layers(self):
        """The sub-network's two normalization layers, in order: the one
        after the hidden Dense layer and the one before the sigmoid."""
        return [getattr(self, f"{self.normalization}_norm_{i}") for i in (1, 2)]

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
        norm_1, norm_2 = self.normalization_layers()
        z = ops.relu(norm_1(self.dense_1(z), training=training))
        z = norm_2(self.dense_2(z), training=training)
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
                "normalization": self.normalization,
                "epsilon": self.epsilon,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        if "normalization" not in config:
            # Saved by release 0.1.0, whose sub-network had batch norms.
            config = dict(config, normalization="batch")
            if "batch_norm_epsilon" in config:
                config["epsilon"] = config.pop("batch_norm_epsilon")
        return super().from_config(config)

    def compute_output_shape(self, input_shape):
        return input_shape
