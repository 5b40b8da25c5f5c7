"""The small MNIST CNN of the demo and the notebooks, with any activation."""

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
