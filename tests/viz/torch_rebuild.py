"""A PyTorch rebuild of a small Keras CNN, with the same weights, for
zennit's and Captum's rule-based methods (they hook `torch.nn` modules, and
a Keras layer is not one).

zennit 0.5.1 imports torchvision's ResNet blocks when it is imported, only
to offer a canonizer for them, and no CPU build of torchvision matches
torch 2.13 on the package index. `import_zennit` gives it a stub module for
that one import (two empty block classes, never used here) when
torchvision is absent, and takes the stub away again.
"""

import importlib
import sys
import types

import keras
import numpy as np

import keras_aprelu
from tests.viz import models


def import_zennit():
    import torch

    try:
        importlib.import_module("torchvision.models.resnet")
        return importlib.import_module("zennit")
    except ImportError:
        pass
    names = ["torchvision", "torchvision.models", "torchvision.models.resnet"]
    stubs = {name: types.ModuleType(name) for name in names}
    resnet = stubs["torchvision.models.resnet"]
    resnet.Bottleneck = type("Bottleneck", (torch.nn.Module,), {})
    resnet.BasicBlock = type("BasicBlock", (torch.nn.Module,), {})
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(stubs)
    try:
        return importlib.import_module("zennit")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


SHAPE = (10, 10, 2)


def keras_cnn(activation="aprelu", seed=0):
    """Conv + BatchNormalization (merged) + an activation, max pooling, a
    residual convolution with ReLU joined by Add, a second activation,
    average pooling, Dense, Maxout (or ReLU) and a Dense head."""
    first, second, dense = {
        "aprelu": (keras_aprelu.APReLU, keras_aprelu.RReLU, True),
        "prelu": (keras_aprelu.PReLU, keras.layers.LeakyReLU, True),
        "relu": (keras.layers.ReLU, keras.layers.ReLU, False),
        "leaky": (_leaky, _leaky, False),
    }[activation]
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    # zennit's canonizer turns the merged BatchNorm into an "identity" that
    # keeps its epsilon, x / sqrt(1 + eps): Keras's default 1e-3 would
    # scale zennit's model by 0.9995; PyTorch's 1e-5 leaves 5e-6.
    x = keras.layers.BatchNormalization(epsilon=1e-5, name="bn1")(x)
    x = first(name="act1")(x)
    p = keras.layers.MaxPooling2D(2, name="pool1")(x)
    c = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2")(p)
    x = keras.layers.Add(name="add")([p, c])
    x = second(name="act2")(x)
    x = keras.layers.AveragePooling2D(2, strides=1, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(12, name="dense1")(x)
    if dense:
        x = keras_aprelu.Maxout(6, name="maxout")(x)
    else:
        x = keras.layers.ReLU(name="act3")(x)
    outputs = keras.layers.Dense(5, name="head")(x)
    model = models.randomize(keras.Model(inputs, outputs), seed)
    return model


def _leaky(name):
    return keras.layers.LeakyReLU(negative_slope=0.2, name=name)


def _gate(model, name, x):
    """The gate `g` (y = x * g) of activation `name` on `x`, NCHW for an
    image."""
    layer = model.get_layer(name)
    probe = keras.Model(model.input, [layer.input, layer.output])
    t, y = (keras.ops.convert_to_numpy(v) for v in probe(x, training=False))
    gate = np.where(t != 0, y / np.where(t != 0, t, 1), 1.0)
    if gate.ndim == 4:
        gate = np.transpose(gate, (0, 3, 1, 2))
    return gate.astype("float32")


def torch_weights(model, name):
    """The weights of the Keras layer `name`, as torch tensors."""
    import torch

    layer = model.get_layer(name)
    return [torch.tensor(np.asarray(w)) for w in layer.get_weights()]


def torch_layer(model, name):
    """The Keras Dense or Conv2D (odd kernel, stride 1, "same" padding)
    `name` as its `torch.nn` twin, with its weights."""
    from torch import nn

    kernel, bias = torch_weights(model, name)
    if kernel.ndim == 2:
        layer = nn.Linear(*kernel.shape)
        layer.weight.data = kernel.T.contiguous()
    else:
        size = kernel.shape[0]
        layer = nn.Conv2d(kernel.shape[2], kernel.shape[3], size, padding=size // 2)
        layer.weight.data = kernel.permute(3, 2, 0, 1).contiguous()
    layer.bias.data = bias
    return layer


def torch_cnn(model, x, native=False):
    """`keras_cnn`'s PyTorch rebuild, NCHW. Its activations are fixed gates
    read from the Keras model on `x` (APReLU's slopes, PReLU's, RReLU's
    inference slope), or with `native` (for Captum, which knows only
    PyTorch's activation modules) `torch.nn.ReLU` or `LeakyReLU`."""
    import torch
    from torch import nn

    class Gate(nn.Module):
        def __init__(self, gate):
            super().__init__()
            self.register_buffer("gate", torch.tensor(gate))

        def forward(self, x):
            return x * self.gate

    class Maxout(nn.Module):  # contiguous groups of the feature axis
        def __init__(self, units):
            super().__init__()
            self.units = units

        def forward(self, x):
            return x.reshape(x.shape[0], self.units, -1).max(-1).values

    zennit = import_zennit()

    gamma, beta, mean, variance = torch_weights(model, "bn1")
    bn = nn.BatchNorm2d(4, eps=model.get_layer("bn1").epsilon)
    bn.weight.data, bn.bias.data = gamma, beta
    bn.running_mean.data, bn.running_var.data = mean, variance
    layers = model.layers
    maxout = any(layer.name == "maxout" for layer in layers)

    def activation(name):
        if not native:
            return Gate(_gate(model, name, x))
        if isinstance(model.get_layer(name), keras.layers.LeakyReLU):
            return nn.LeakyReLU(model.get_layer(name).negative_slope)
        return nn.ReLU()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block1 = nn.Sequential(torch_layer(model, "conv1"), bn)
            self.act1 = activation("act1")
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = torch_layer(model, "conv2")
            self.relu2 = nn.ReLU()
            self.add = zennit.layer.Sum()
            self.act2 = activation("act2")
            self.pool2 = nn.AvgPool2d(2, stride=1)
            self.dense1 = torch_layer(model, "dense1")
            self.act3 = Maxout(6) if maxout else activation("act3")
            self.head = torch_layer(model, "head")

        def forward(self, x):
            x = self.act1(self.block1(x))
            if native:
                # Captum 0.9.0's DeepLift loses summation to delta when a
                # hooked activation feeds a hooked max pooling directly
                # (both are full backward hooks); a copy between them,
                # which changes no value, restores it.
                x = x.clone()
            x = self.pool1(x)
            x = self.add(torch.stack([x, self.relu2(self.conv2(x))], dim=-1))
            x = self.pool2(self.act2(x))
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras's order
            return self.head(self.act3(self.dense1(x)))

    net = Net().eval()
    return net, Gate
