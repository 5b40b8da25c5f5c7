"""The small MNIST models of the demo and the notebooks, with any activation.

`build_cnn` is the CNN of the demo; `build_resnet` is a small residual network
of the residual building units of Zhao et al. (2020).
"""

import keras

import keras_aprelu

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "rrelu", "maxout", "aprelu")


def activation_layer(name, index, width):
    """A fresh activation layer named `act{index}` for `width` channels."""
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


def build_resnet(activation="aprelu", units=((16, 1), (32, 2), (32, 2)), seed=0):
    """The paper's residual network at small scale.

    A 3x3 convolution, the residual building units `units` (width, stride),
    then BN, activation, global average pooling and a softmax classifier,
    as in Zhao et al. (2020), Fig. 4. Every activation is a fresh layer of
    `activation` (one of `RESNET_ACTIVATIONS`, the three the paper
    compares).
    """
    if activation not in RESNET_ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {', '.join(RESNET_ACTIVATIONS)}. "
            f"Received: activation={activation!r}"
        )
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(units[0][0], 3, padding="same", name="conv0")(inputs)
    for index, (width, strides) in enumerate(units, start=1):
        x = residual_unit(x, width, strides, activation, index)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn")(x)
    x = activation_layer(activation, "_out", x.shape[-1])(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"mnist_resnet_{activation}")
