"""Tiny models for the viz tests: one architecture in four API styles."""

import contextlib

import keras
import numpy as np
import pytest

import keras_aprelu
from keras_aprelu.viz import _backend
from tests.backend_testing import to_numpy

# TensorFlow runs channels_first convolutions on the CPU only with oneDNN,
# which it enables on some CPUs only (not on AMD ones, nor with
# TF_ENABLE_ONEDNN_OPTS=0). Tests that need them skip elsewhere; the error
# users get there is tested in tests/viz/test_inputs.py.
needs_channels_first = pytest.mark.skipif(
    not _backend.runs_channels_first(),
    reason="this TensorFlow runs no channels_first (NCHW) convolution on this "
    "CPU: it runs without oneDNN (an AMD CPU, or TF_ENABLE_ONEDNN_OPTS=0)",
)


def backbone_layers():
    return [
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
        keras_aprelu.APReLU(name="aprelu"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Conv2D(6, 3, padding="same", name="conv2"),
        keras_aprelu.PReLU(name="prelu"),
    ]


def head_layers(classes=3):
    return [
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(classes, activation="softmax", name="dense"),
    ]


def functional(input_shape=(8, 8, 2), classes=3):
    inputs = keras.Input(input_shape)
    x = inputs
    for layer in backbone_layers() + head_layers(classes):
        x = layer(x)
    return keras.Model(inputs, x, name="functional")


def sequential(input_shape=(8, 8, 2), classes=3):
    return keras.Sequential(
        [keras.Input(input_shape), *backbone_layers(), *head_layers(classes)],
        name="sequential",
    )


def nested(input_shape=(8, 8, 2), classes=3):
    backbone = keras.Sequential(
        [keras.Input(input_shape), *backbone_layers()], name="backbone"
    )
    inputs = keras.Input(input_shape)
    x = backbone(inputs)
    for layer in head_layers(classes):
        x = layer(x)
    return keras.Model(inputs, x, name="nested")


class Subclassed(keras.Model):
    def __init__(self, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.body = backbone_layers() + head_layers(classes)

    def call(self, inputs, training=False):
        x = inputs
        for layer in self.body:
            x = layer(x, training=training)
        return x


def subclassed(input_shape=(8, 8, 2), classes=3):
    model = Subclassed(classes, name="subclassed")
    model(np.zeros((1, *input_shape), "float32"))
    return model


def vit_classifier(num_layers=1, head=None):
    """keras-hub's ViT from a small configuration, with a Dense head of 3
    classes (named `head`) on the class token; returns (model, backbone).
    16 x 16 images in 4 x 4 patches: 1 class token and 16 patch tokens of
    8 channels. Needs keras_hub (a dev dependency)."""
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3),
        patch_size=4,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=8,
        mlp_dim=16,
    )
    inputs = keras.Input((16, 16, 3))
    outputs = keras.layers.Dense(3, name=head)(backbone(inputs)[:, 0])
    return keras.Model(inputs, outputs), backbone


def bert_classifier(num_layers=1, length=10, vocabulary=30):
    """keras-hub's BERT from a small configuration, with a Dense head of 2
    classes on its pooled output; returns (model, backbone). Inputs: a
    dict of `token_ids`, `segment_ids` and `padding_mask`, (batch,
    length) ints. Needs keras_hub (a dev dependency)."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=length,
    )
    names = ("token_ids", "segment_ids", "padding_mask")
    inputs = {name: keras.Input((length,), dtype="int32", name=name) for name in names}
    pooled = backbone(inputs)["pooled_output"]
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(pooled)), backbone


def copy_weights(source, target):
    """Copies weights layer by layer (by name), whatever the API style."""
    from keras_aprelu.viz import _layers

    by_name = {path.rsplit("/", 1)[-1]: layer for path, layer in _layers.walk(source)}
    for path, layer in _layers.walk(target):
        name = path.rsplit("/", 1)[-1]
        if name in by_name and not isinstance(layer, keras.Model):
            layer.set_weights(by_name[name].get_weights())


def randomize(model, seed=0):
    """Non-trivial weights everywhere, BN statistics included."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(0, 0.5, size=weight.shape)
        if "variance" in weight.path:
            value = rng.uniform(0.5, 1.5, size=weight.shape)
        weight.assign(value.astype(weight.dtype))
    return model


# What viz patches on a layer instance, for one computation.
_PATCHABLE = ("call", "activation", "_compute_attention", "_masked_softmax")


def snapshot(model):
    """Everything a viz call must leave as it was."""
    from keras_aprelu.viz import _layers

    return {
        "weights": [np.array(w) for w in model.get_weights()],
        "patched": {
            path: sorted(k for k in _PATCHABLE if k in vars(layer))
            for path, layer in _layers.walk_all(model)
        },
        "activations": {
            path: getattr(layer, "activation", None)
            for path, layer in _layers.walk(model)
        },
    }


def assert_unchanged(model, before, x):
    after = snapshot(model)
    for a, b in zip(before["weights"], after["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert after["patched"] == before["patched"]
    for path, activation in before["activations"].items():
        assert after["activations"][path] is activation, path
    np.testing.assert_array_equal(
        before["prediction"], to_numpy(model(x, training=False))
    )


@contextlib.contextmanager
def logits(model, name="dense"):
    """The softmax of the model's final layer `name` off, for a reference
    computed by hand (independently of viz's own logits handling)."""
    from keras_aprelu.viz import _layers

    (layer,) = [lyr for path, lyr in _layers.walk(model) if lyr.name == name]
    activation = layer.activation
    layer.activation = keras.activations.linear
    try:
        yield
    finally:
        layer.activation = activation
