"""Wrote release_0_1_0.keras and .npz with keras-aprelu 0.1.0 (commit 2163997).

Run once, under TensorFlow, from a checkout of that commit on PYTHONPATH:

    git worktree add /tmp/old 2163997
    PYTHONPATH=/tmp/old python tests/data/make_release_fixture.py tests/data

The files pin the weight structure that `.keras` files of that release hold,
so that tests/layers/test_backends.py can load them under every backend.
"""

import os
import sys

import keras
import numpy as np

import keras_aprelu

if not keras_aprelu.__file__.startswith("/tmp/old"):
    raise SystemExit(f"not the 0.1.0 checkout: {keras_aprelu.__file__}")
keras.utils.set_random_seed(0)
inputs = keras.Input((8, 8, 2), name="image")
x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
x = keras_aprelu.APReLU(name="aprelu")(x)
x = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
x = keras_aprelu.PReLU(name="prelu")(x)
x = keras_aprelu.RReLU(seed=3, name="rrelu")(x)
x = keras_aprelu.Maxout(4, name="maxout")(x)
x = keras.layers.Flatten()(x)
outputs = keras.layers.Dense(3, name="head")(x)
model = keras.Model(inputs, outputs, name="release_0_1_0")
model.compile("adam", "mse")
data = np.random.default_rng(1).normal(size=(16, 8, 8, 2)).astype("float32")
model.fit(data, np.random.default_rng(2).normal(size=(16, 3)), epochs=2, verbose=0)
out = sys.argv[1]
model.save(os.path.join(out, "release_0_1_0.keras"))
np.savez(
    os.path.join(out, "release_0_1_0.npz"),
    x=data[:4],
    y=model.predict(data[:4], verbose=0),
)
print(keras.__version__, keras.config.backend())
