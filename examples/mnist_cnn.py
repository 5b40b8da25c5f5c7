"""The small MNIST models of the demo and the notebooks, with any activation.

`build_cnn` is the CNN of the demo; `build_resnet` is a small residual network
of the residual building units of Zhao et al. (2020); `build_reference_resnet`
and `compile_reference` are the authors' own MNIST network and optimizer,
which `reproduce.py` trains.
"""

import keras

import keras_aprelu
from keras_aprelu.layers.aprelu import NORMALIZATIONS

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "rrelu", "maxout", "aprelu")


def activation_layer(name, index, width):
    """A fresh activation layer named `act{index}` for `width` channels.
    `"aprelu_batch"` (any `"aprelu_" + normalization`) is APReLU with that
    normalization in its sub-network."""
    layer_name = f"act{index}"
    if name == "relu":
        return keras.layers.ReLU(name=layer_name)
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(0.1, name=layer_name)
    if name == "prelu":
        return keras_aprelu.PReLU(name=layer_name)
    if name == "rrelu":
        return keras_aprelu.RReLU(name=layer_name)
    if name == "maxout":
        return keras_aprelu.Maxout(width, name=layer_name)
    if name == "aprelu":
        return keras_aprelu.APReLU(name=layer_name)
    if name.startswith("aprelu_") and name[len("aprelu_") :] in NORMALIZATIONS:
        # "aprelu_batch": the paper's sub-network, with batch norms.
        return keras_aprelu.APReLU(
            normalization=name[len("aprelu_") :], name=layer_name
        )
    raise ValueError(
        f"`activation` must be one of {', '.join(ACTIVATIONS)}. "
        f"Received: activation={name!r}"
    )


def build_cnn(activation="aprelu", filters=(32, 64), seed=0):
    """Conv-act-pool twice, then dropout and a softmax classifier.

    Maxout takes the max of pairs, so its convolutions have twice the filters
    and the maps that follow have the same width as for the other
    activations.
    """
    if activation not in ACTIVATIONS:
        activation_layer(activation, 0, 1)  # raises the ValueError
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for index, width in enumerate(filters, start=1):
        grow = 2 if activation == "maxout" else 1
        x = keras.layers.Conv2D(grow * width, 3, padding="same", name=f"conv{index}")(x)
        x = activation_layer(activation, index, width)(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.3, name="dropout")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"mnist_cnn_{activation}")


def prepare(images):
    """uint8 (n, 28, 28) -> float32 (n, 28, 28, 1) in [0, 1]."""
    return (images.astype("float32") / 255.0)[..., None]


def compile_cnn(model, learning_rate=1e-3):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# The moving statistics of batch normalization follow the batches with
# momentum 0.9 (PyTorch's default) rather than Keras's 0.99: the runs of the
# notebooks are a few hundred steps, too few for 0.99 to forget its start.
BN_MOMENTUM = 0.9


def residual_unit(x, width, strides, activation, index):
    """A residual building unit as in Zhao et al. (2020), Fig. 4.

    BN, activation, 3x3 convolution, BN, activation, 3x3 convolution, plus
    the shortcut: the identity, or a strided 1x1 convolution where the unit
    changes the width or the resolution. The activations are named
    `act{index}a` and `act{index}b`.
    """
    shortcut = x
    if strides != 1 or x.shape[-1] != width:
        shortcut = keras.layers.Conv2D(
            width, 1, strides=strides, name=f"rbu{index}_shortcut"
        )(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"rbu{index}_bn1")(x)
    x = activation_layer(activation, f"{index}a", x.shape[-1])(x)
    x = keras.layers.Conv2D(
        width, 3, strides=strides, padding="same", name=f"rbu{index}_conv1"
    )(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"rbu{index}_bn2")(x)
    x = activation_layer(activation, f"{index}b", width)(x)
    x = keras.layers.Conv2D(width, 3, padding="same", name=f"rbu{index}_conv2")(x)
    return keras.layers.Add(name=f"rbu{index}_add")([x, shortcut])


RESNET_ACTIVATIONS = ("relu", "prelu", "aprelu")


def _resnet_input(activation, seed):
    """Checks `activation` (one the paper compares), seeds the weights, and
    returns the MNIST image input of a residual network."""
    base = "aprelu" if activation.startswith("aprelu_") else activation
    if base not in RESNET_ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {', '.join(RESNET_ACTIVATIONS)}. "
            f"Received: activation={activation!r}"
        )
    keras.utils.set_random_seed(seed)
    return keras.Input((28, 28, 1), name="image")


def build_resnet(activation="aprelu", units=((16, 1), (32, 2), (32, 2)), seed=0):
    """The paper's residual network at small scale.

    A 3x3 convolution, the residual building units `units` (width, stride),
    then BN, activation, global average pooling and a softmax classifier,
    as in Zhao et al. (2020), Fig. 4. Every activation is a fresh layer of
    `activation` (one of `RESNET_ACTIVATIONS`, the three the paper
    compares).
    """
    inputs = _resnet_input(activation, seed)
    x = keras.layers.Conv2D(units[0][0], 3, padding="same", name="conv0")(inputs)
    for index, (width, strides) in enumerate(units, start=1):
        x = residual_unit(x, width, strides, activation, index)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn")(x)
    x = activation_layer(activation, "_out", x.shape[-1])(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"mnist_resnet_{activation}")


# Zhao et al.'s own MNIST network and recipe, as in their TFLearn script
# (zhao62/Adaptively-Parametric-ReLU, ResNet_APReLU_TFLearn.py).
# TFLearn's weight decay is 1e-4 * sum(w**2) / 2, which is Keras's L2(5e-5).
REFERENCE_L2 = 5e-5
# TFLearn's batch normalization: decay 0.9, epsilon 1e-5.
REFERENCE_BN = {"momentum": 0.9, "epsilon": 1e-5}
REFERENCE_BATCH_SIZE = 100


@keras.saving.register_keras_serializable(package="keras_aprelu_examples")
class ZeroChannelPad(keras.layers.Layer):
    """Pads the channel axis (last) with `before` and `after` zero channels:
    the weight-free widening of the authors' shortcut."""

    def __init__(self, before, after, **kwargs):
        super().__init__(**kwargs)
        self.before, self.after = before, after

    def call(self, inputs):
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[self.before, self.after]]
        return keras.ops.pad(inputs, pad)

    def get_config(self):
        return {**super().get_config(), "before": self.before, "after": self.after}

    def compute_output_shape(self, input_shape):
        *rest, channels = input_shape
        if channels is not None:
            channels += self.before + self.after
        return (*rest, channels)


def reference_activation(name, index, normalization="batch"):
    """An activation of the reference network: as `activation_layer`, with
    APReLU configured as the authors' (L2 on its Dense layers, epsilon
    1e-5) and, by default, their batch norms in its sub-network."""
    if name == "aprelu":
        return keras_aprelu.APReLU(
            kernel_regularizer=keras.regularizers.L2(REFERENCE_L2),
            normalization=normalization,
            epsilon=REFERENCE_BN["epsilon"],
            name=f"act{index}",
        )
    return activation_layer(name, index, None)


def reference_unit(x, width, strides, activation, index, normalization="batch"):
    """The authors' residual building unit: BN, activation, 3x3 conv (He
    initialization, L2), twice; the shortcut has no weights (a 1x1 average
    pool of stride `strides`, then zero channels split evenly around the
    input's, the odd one after)."""

    def conv(y, stride, part):
        return keras.layers.Conv2D(
            width,
            3,
            strides=stride,
            padding="same",
            kernel_initializer="he_normal",
            kernel_regularizer=keras.regularizers.L2(REFERENCE_L2),
            name=f"rbu{index}_conv{part}",
        )(y)

    shortcut = x
    y = keras.layers.BatchNormalization(**REFERENCE_BN, name=f"rbu{index}_bn1")(x)
    y = reference_activation(activation, f"{index}a", normalization)(y)
    y = conv(y, strides, 1)
    y = keras.layers.BatchNormalization(**REFERENCE_BN, name=f"rbu{index}_bn2")(y)
    y = reference_activation(activation, f"{index}b", normalization)(y)
    y = conv(y, 1, 2)
    if strides > 1:
        shortcut = keras.layers.AveragePooling2D(
            1, strides=strides, name=f"rbu{index}_subsample"
        )(shortcut)
    extra = width - x.shape[-1]
    if extra:
        shortcut = ZeroChannelPad(
            extra // 2, extra - extra // 2, name=f"rbu{index}_pad"
        )(shortcut)
    return keras.layers.Add(name=f"rbu{index}_add")([y, shortcut])


def build_reference_resnet(activation="aprelu", seed=0, normalization="batch"):
    """Zhao et al.'s MNIST network, as in their TFLearn script.

    conv16 -> RBU(16, stride 1) -> RBU(32, stride 2) -> RBU(32, stride 1)
    -> BN -> activation -> global average pooling -> softmax. Inputs are
    zero-centred images (`zero_centred`). The first convolution keeps
    TFLearn's default initialization (uniform, variance 1/fan_in) and the
    classifier its truncated normal of std 0.02; the units use He
    initialization; L2 as TFLearn's weight decay of 1e-4 on every
    convolution and on APReLU's Dense layers, not on the classifier.
    `normalization` is that of APReLU's sub-network: the authors' batch
    norms by default.
    """
    inputs = _resnet_input(activation, seed)
    x = keras.layers.Conv2D(
        16,
        3,
        padding="same",
        kernel_initializer=keras.initializers.VarianceScaling(1.0, "fan_in", "uniform"),
        kernel_regularizer=keras.regularizers.L2(REFERENCE_L2),
        name="conv0",
    )(inputs)
    for index, (width, strides) in enumerate(((16, 1), (32, 2), (32, 1)), start=1):
        x = reference_unit(x, width, strides, activation, index, normalization)
    x = keras.layers.BatchNormalization(**REFERENCE_BN, name="bn")(x)
    x = reference_activation(activation, "_out", normalization)(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(
        10,
        activation="softmax",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        name="classifier",
    )(x)
    return keras.Model(inputs, outputs, name=f"reference_resnet_{activation}")


def compile_reference(model, steps_per_decay=2000):
    """The authors' optimizer: momentum SGD (0.9) at 0.1, times 0.1 every
    `steps_per_decay` steps (staircase)."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, steps_per_decay, 0.1, staircase=True
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def zero_centred(train, *others):
    """`train` and each of `others` minus `train`'s mean per pixel
    (TFLearn's featurewise zero-centring, as the authors' script)."""
    mean = train.mean(axis=0, keepdims=True)
    return [train - mean] + [x - mean for x in others]
