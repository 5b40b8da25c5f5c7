"""Export, TFLite and distributed training, for every layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_aprelu

LAYERS = {
    "APReLU": lambda: keras_aprelu.APReLU(),
    "PReLU": lambda: keras_aprelu.PReLU(),
    "RReLU": lambda: keras_aprelu.RReLU(seed=0),
    "Maxout": lambda: keras_aprelu.Maxout(2),
}


def small_cnn(make_layer):
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3),
            make_layer(),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )


def sample(n=4):
    return np.random.default_rng(0).normal(size=(n, 8, 8, 1)).astype("float32")


@pytest.mark.parametrize("name", LAYERS)
def test_export_and_reload(name, tmp_path):
    model = small_cnn(LAYERS[name])
    x = sample()
    model.export(str(tmp_path / "saved"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        reloaded.serve(x).numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", LAYERS)
def test_tflite_conversion(name):
    model = small_cnn(LAYERS[name])
    x = sample(2)
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    interpreter = Interpreter(model_content=flatbuffer)
    signature = interpreter.get_signature_runner()
    (output,) = signature(**{signature.get_input_details().popitem()[0]: x}).values()
    np.testing.assert_allclose(
        output, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    if name == "PReLU":
        # The forward is written so that the converter fuses it.
        assert "PRELU" in ops


@pytest.mark.parametrize("name", LAYERS)
def test_fit_under_mirrored_strategy(name, strategy):
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = small_cnn(LAYERS[name])
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    x = sample(8)
    y = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.evaluate(x, y, verbose=0) < before
