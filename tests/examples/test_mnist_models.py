import keras
import mnist_cnn
import numpy as np
import pytest

import keras_aprelu


def test_resnet_has_the_hand_counted_parameters():
    # conv0 160; unit 1 (identity shortcut) 64 + 2320 + 64 + 2320; unit 2
    # 544 (1x1 shortcut) + 64 + 4640 + 128 + 9248; unit 3 1056 + 128 + 9248
    # + 128 + 9248; final BN 128; classifier 330.
    model = mnist_cnn.build_resnet("relu")
    assert model.count_params() == 39818
    assert [layer.name for layer in model.layers if "shortcut" in layer.name] == [
        "rbu2_shortcut",
        "rbu3_shortcut",
    ]
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    "name, cls", [("prelu", keras_aprelu.PReLU), ("aprelu", keras_aprelu.APReLU)]
)
def test_resnet_puts_a_fresh_activation_in_each_place(name, cls):
    model = mnist_cnn.build_resnet(name)
    activations = [layer for layer in model.layers if isinstance(layer, cls)]
    assert [layer.name for layer in activations] == [
        "act1a",
        "act1b",
        "act2a",
        "act2b",
        "act3a",
        "act3b",
        "act_out",
    ]


def test_residual_unit_adds_its_branch_to_the_identity():
    inputs = keras.Input((6, 6, 4))
    outputs = mnist_cnn.residual_unit(inputs, 4, 1, "relu", 1)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 4)).astype("float32")
    conv = model.get_layer("rbu1_conv2")
    kernel, bias = conv.get_weights()
    conv.set_weights([np.zeros_like(kernel), np.full_like(bias, 0.5)])
    # With the last convolution giving 0.5 everywhere, the unit is x + 0.5.
    np.testing.assert_allclose(model.predict(x, verbose=0), x + 0.5, rtol=1e-6)


def test_resnet_refuses_an_activation_the_paper_does_not_compare():
    with pytest.raises(ValueError, match="Received: activation='maxout'"):
        mnist_cnn.build_resnet("maxout")
