"""A 1-D task of the kind APReLU's authors build: is there a burst in the noise?

Each signal is white Gaussian noise (unit variance). In class 1 a short
burst is added at a random place: a Hann-windowed sine of `burst` samples
with a random frequency and phase. The task is easy for a network that
finds the burst, and its global averages barely move from class to class,
which is what makes the batch statistics of APReLU's sub-network fragile
(docs/layers.md, "APReLU in inference mode").

The same data, model and two-mode accuracy serve the test of the layer's
default (`tests/layers/test_aprelu_inference.py`) and the study of its
normalization (`examples/normalization_study.py`).
"""

import keras
import numpy as np

import keras_aprelu


def make_data(samples, length=1024, burst=32, amplitude=1.0, seed=0):
    """`samples` signals of shape (length, 1) and their labels (0 or 1),
    half of each class, shuffled."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, length)).astype("float32")
    y = rng.permutation(np.arange(samples) % 2)
    window = np.hanning(burst)
    for i in np.flatnonzero(y):
        start = rng.integers(0, length - burst)
        cycles = rng.uniform(2, 6)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * cycles * np.arange(burst) / burst + phase)
        x[i, start : start + burst] += amplitude * window * wave
    return x[..., None], y.astype("int32")


def build_model(activation="aprelu", seed=0, length=1024, filters=16, **layer_kwargs):
    """Two Conv1D + activation blocks, global average pooling and a
    softmax, compiled with Adam. `layer_kwargs` go to APReLU (for example
    `normalization="batch"`, the paper's sub-network)."""
    keras.utils.set_random_seed(seed)

    def act(name):
        if activation == "aprelu":
            return keras_aprelu.APReLU(name=name, **layer_kwargs)
        if activation == "prelu":
            return keras_aprelu.PReLU(name=name)
        return keras.layers.Activation(activation, name=name)

    model = keras.Sequential(
        [
            keras.Input((length, 1)),
            keras.layers.Conv1D(filters, 9, strides=2, padding="same"),
            act("act1"),
            keras.layers.Conv1D(filters, 9, strides=2, padding="same"),
            act("act2"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def accuracy_in_training_mode(model, x, y, batch_size):
    """The accuracy the model has as `fit` computes it: every batch norm
    normalizes with the statistics of its batch of `batch_size` samples.
    The moving statistics that this updates are restored afterwards."""
    saved = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    try:
        correct = 0
        for start in range(0, len(x), batch_size):
            probs = model(x[start : start + batch_size], training=True)
            predicted = np.argmax(keras.ops.convert_to_numpy(probs), axis=-1)
            correct += int(np.sum(predicted == y[start : start + batch_size]))
    finally:
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)
    return correct / len(x)
