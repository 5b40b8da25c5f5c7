"""A 1-D task of the kind APReLU's authors build: is there a burst in the noise?

Each signal is white Gaussian noise (unit variance). In class 1 a short
burst is added at a random place: a Hann-windowed sine of `burst` samples
with a random frequency and phase. `make_images` is the same task in 2-D:
a windowed grating of `burst` x `burst` pixels in a noise image. The task
is easy for a network that
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


def make_images(samples, size=32, burst=12, amplitude=3.0, seed=0):
    """`samples` noise images of shape (size, size, 1) and their labels;
    class 1 holds a Hann-windowed grating of `burst` x `burst` pixels at a
    random place, with a random orientation, frequency and phase."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, size, size)).astype("float32")
    y = rng.permutation(np.arange(samples) % 2)
    window = np.outer(np.hanning(burst), np.hanning(burst))
    grid = np.arange(burst) / burst
    for i in np.flatnonzero(y):
        row, col = rng.integers(0, size - burst, size=2)
        angle = rng.uniform(0, np.pi)
        cycles = rng.uniform(1, 3)
        phase = rng.uniform(0, 2 * np.pi)
        along = np.cos(angle) * grid[:, None] + np.sin(angle) * grid[None, :]
        wave = np.sin(2 * np.pi * cycles * along + phase)
        x[i, row : row + burst, col : col + burst] += amplitude * window * wave
    return x[..., None], y.astype("int32")


def build_model(
    activation="aprelu", seed=0, length=1024, filters=16, dims=1, **layer_kwargs
):
    """Two convolution + activation blocks, global average pooling and a
    softmax, compiled with Adam: Conv1D on signals of `length` samples, or
    Conv2D on `length` x `length` images with `dims=2`. `layer_kwargs` go
    to APReLU (for example `normalization="batch"`, the paper's
    sub-network)."""
    keras.utils.set_random_seed(seed)
    conv = keras.layers.Conv1D if dims == 1 else keras.layers.Conv2D
    pool = (
        keras.layers.GlobalAveragePooling1D
        if dims == 1
        else keras.layers.GlobalAveragePooling2D
    )

    def act(name):
        if activation == "aprelu":
            return keras_aprelu.APReLU(name=name, **layer_kwargs)
        if activation == "prelu":
            return keras_aprelu.PReLU(name=name)
        return keras.layers.Activation(activation, name=name)

    model = keras.Sequential(
        [
            keras.Input((length,) * dims + (1,)),
            conv(filters, 9 if dims == 1 else 5, strides=2, padding="same"),
            act("act1"),
            conv(filters, 9 if dims == 1 else 5, strides=2, padding="same"),
            act("act2"),
            pool(),
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
