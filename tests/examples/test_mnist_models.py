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


def test_reference_resnet_has_the_hand_counted_parameters():
    # The authors' network: conv0 160; unit 1 (16 -> 16) 64 + 2320 + 64 +
    # 2320; unit 2 (16 -> 32, stride 2) 64 + 4640 + 128 + 9248; unit 3 128 +
    # 9248 + 128 + 9248; final BN 128; classifier 330. The shortcuts have
    # no weights.
    model = mnist_cnn.build_reference_resnet("relu")
    assert model.count_params() == 38218
    assert not [layer for layer in model.layers if "shortcut" in layer.name]
    strides = [
        layer.strides
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.name.endswith("conv1")
    ]
    assert strides == [(1, 1), (2, 2), (1, 1)]
    assert model.get_layer("rbu2_conv2").output.shape == (None, 14, 14, 32)
    assert model.output_shape == (None, 10)


def test_reference_shortcut_subsamples_and_pads_channels_with_zeros():
    inputs = keras.Input((6, 6, 16))
    model = keras.Model(inputs, mnist_cnn.reference_unit(inputs, 32, 2, "relu", 2))
    conv = model.get_layer("rbu2_conv2")
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 16)).astype("float32")
    # With the branch at 0, the unit is the shortcut: every other pixel,
    # between 8 zero channels on either side.
    expected = np.pad(x[:, ::2, ::2, :], [(0, 0), (0, 0), (0, 0), (8, 8)])
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    odd = keras.Model(inputs, mnist_cnn.ZeroChannelPad(1, 2)(inputs))
    assert odd.output_shape == (None, 6, 6, 19)
    np.testing.assert_array_equal(
        odd.predict(x, verbose=0), np.pad(x, [(0, 0), (0, 0), (0, 0), (1, 2)])
    )


def test_reference_aprelu_and_l2_are_the_authors():
    model = mnist_cnn.build_reference_resnet("aprelu")
    act = model.get_layer("act2a")
    assert act.batch_norm_1.epsilon == act.batch_norm_2.epsilon == 1e-5
    bns = [x for x in model.layers if isinstance(x, keras.layers.BatchNormalization)]
    assert {(bn.momentum, bn.epsilon) for bn in bns} == {(0.9, 1e-5)}
    # TFLearn's weight decay 1e-4 is 1e-4 * sum(w**2) / 2 over every
    # convolution kernel and APReLU's Dense kernels, not the classifier.
    kernels = [
        w
        for w in model.trainable_weights
        if w.path.endswith("kernel") and "classifier" not in w.path
    ]
    assert len(kernels) == 7 + 7 * 2  # 7 convolutions, 7 APReLUs
    expected = sum(1e-4 * np.sum(np.square(np.asarray(w))) / 2 for w in kernels)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    np.testing.assert_allclose(total, expected, rtol=1e-5)


def test_reference_learning_rate_drops_tenfold_every_2000_steps():
    model = mnist_cnn.compile_reference(mnist_cnn.build_reference_resnet("relu"))
    rates = []
    for step in (0, 1999, 2000, 3999, 4000, 5499):
        model.optimizer.iterations.assign(step)
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
    assert model.optimizer.momentum == 0.9


def test_zero_centred_subtracts_the_training_mean_per_pixel():
    rng = np.random.default_rng(1)
    train, test = rng.random((5, 3, 3, 1)), rng.random((2, 3, 3, 1))
    centred_train, centred_test = mnist_cnn.zero_centred(train, test)
    np.testing.assert_allclose(centred_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(centred_test, test - train.mean(axis=0), rtol=1e-12)
