"""PReLU and RReLU against PyTorch, on every backend.

PyTorch is the oracle: `torch.nn.PReLU`, `torch.nn.RReLU`,
`torch.nn.functional.prelu` and `torch.nn.functional.rrelu` run on the
same float64 inputs and weights, and their outputs and gradients are the
expected values. The cases are PyTorch's own (torch 2.13.0,
`torch/testing/_internal/common_modules.py`,
`module_inputs_torch_nn_PReLU`; `common_nn.py`, the `RReLU` module tests;
`common_methods_invocations.py`, `sample_inputs_prelu`,
`sample_inputs_rrelu` and `error_inputs_rrelu`). Adapted:

- PyTorch puts channels on axis 1; our layers take `axis=1` for that.
  `torch.nn.PReLU()` (one slope) is `PReLU(axis=None)`.
- Our layers are batch first: PyTorch's scalar and no-batch inputs run
  through the functional forms, which take any shape.
- PyTorch's slopes start at 0.25; here both get the same random slopes,
  so that a wrong channel mapping cannot pass.
- The inputs hold exact zeros, where the two must also agree: the
  gradient at 0 is the slope, in PReLU and in RReLU's both modes.
"""

import keras
import numpy as np
import pytest
import scipy.stats
import torch

from keras_aprelu import PReLU
from keras_aprelu import RReLU
from keras_aprelu import activations
from tests.backend_testing import layer_function
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp

S, M = 5, 10


def _sample(shape, seed):
    x = np.random.default_rng(seed).normal(size=shape)
    x.reshape(-1)[::7] = 0.0  # exact zeros, at the kink
    return x


def _torch_vjp(fn, args, upstream):
    """Output and gradients of sum(fn(*args) * upstream) in PyTorch."""
    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    out = fn(*tensors)
    torch.sum(out * torch.tensor(upstream)).backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


# (desc, one slope per channel, input shape) of module_inputs_torch_nn_PReLU
# with a batch.
PRELU_MODULE_CASES = [
    ("1d", False, (2, 3, 4)),
    ("1d_multiparam", True, (2, 3, 4)),
    ("2d", False, (2, 3, 4, 5)),
    ("2d_multiparam", True, (2, 3, 4, 5)),
    ("3d", False, (2, 3, 4, 5, 6)),
    ("3d_multiparam", True, (2, 3, 4, 5, 6)),
]


@pytest.mark.parametrize(
    "per_channel, shape",
    [case[1:] for case in PRELU_MODULE_CASES],
    ids=[case[0] for case in PRELU_MODULE_CASES],
)
def test_prelu_layer_matches_torch_nn_prelu(per_channel, shape):
    channels = shape[1] if per_channel else 1
    x = _sample(shape, seed=len(shape))
    alpha = np.random.default_rng(1).uniform(-0.5, 0.5, size=channels)
    upstream = np.random.default_rng(2).normal(size=shape)

    module = torch.nn.PReLU(channels, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(alpha))
    expected, (expected_dx, expected_dalpha) = _torch_vjp(
        lambda t, w: torch.nn.functional.prelu(t, w), [x, alpha], upstream
    )
    np.testing.assert_allclose(
        expected, module(torch.tensor(x)).detach().numpy(), rtol=0, atol=0
    )

    layer = PReLU(axis=1 if per_channel else None, dtype="float64")
    layer.build(shape)
    layer.alpha.assign(alpha.reshape(tuple(layer.alpha.shape)))
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-6, atol=1e-6)
    fn, args = layer_function(layer, x)
    dx, dalpha = vjp(fn, args, upstream)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        dalpha.reshape(-1), expected_dalpha, rtol=1e-6, atol=1e-6
    )


def _prelu_sample_inputs():
    """sample_inputs_prelu: each shape with four scalar slopes and one
    slope per channel (axis 1, or a single one below rank 2)."""
    for shape in [(), (S,), (S, S), (S, M, S)]:
        for weight in [-1.0, 0.0, 0.8, 1.0]:
            yield shape, np.array(weight)
        channels = shape[1] if len(shape) >= 2 else 1
        yield shape, np.linspace(-0.5, 1.0, channels)


@pytest.mark.parametrize("shape, weight", list(_prelu_sample_inputs()))
def test_prelu_function_matches_torch_functional_prelu(shape, weight):
    x = _sample(shape, seed=3) if shape else np.array(-1.5)
    upstream = np.random.default_rng(4).normal(size=shape)
    expected, (expected_dx, expected_dw) = _torch_vjp(
        torch.nn.functional.prelu, [x, weight], upstream
    )
    # Our alpha broadcasts from the right: channels on axis 1 get (C, 1),
    # and a scalar input takes a scalar slope (ours never grows x's shape).
    alpha_shape = ()
    if weight.ndim and shape:
        alpha_shape = weight.shape + (1,) * max(len(shape) - 2, 0)

    def ours(x, w):
        alpha = keras.ops.reshape(w, alpha_shape) if weight.ndim else w
        return activations.prelu(x, alpha)

    np.testing.assert_allclose(
        to_numpy(ours(x, weight)), expected, rtol=1e-6, atol=1e-6
    )
    dx, dw = vjp(ours, [x, weight], upstream)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dw, expected_dw, rtol=1e-6, atol=1e-6)


# The RReLU module tests of common_nn.py: (constructor args, input size).
RRELU_MODULE_CASES = [((), (1, 2, 2)), ((0.1, 0.9), (4, 4, 5)), ((0.1, 0.9), ())]


@pytest.mark.parametrize("bounds, shape", RRELU_MODULE_CASES)
def test_rrelu_inference_matches_torch(bounds, shape):
    x = _sample(shape, seed=5) if shape else np.array(-0.75)
    upstream = np.random.default_rng(6).normal(size=shape)
    module = torch.nn.RReLU(*bounds).eval()
    expected, (expected_dx,) = _torch_vjp(module, [x], upstream)
    functional = torch.nn.functional.rrelu(torch.tensor(x), *bounds, training=False)
    np.testing.assert_array_equal(functional.numpy(), expected)

    def ours(x):
        if not shape:  # a scalar: the functional form
            return activations.rrelu(x, *bounds)
        return RReLU(*bounds, dtype="float64")(x)

    np.testing.assert_allclose(to_numpy(ours(x)), expected, rtol=1e-6, atol=1e-6)
    (dx,) = vjp(ours, [x], upstream)
    # The gradient at the zeros is the mean slope on every backend, as here.
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bounds", [(1 / 8, 1 / 3), (0.1, 0.9)])
def test_rrelu_training_gradient_is_the_drawn_slope_as_in_torch(bounds):
    lower, upper = bounds
    x = np.tile([-2.0, -0.5, 0.0, 0.0, 1.0], 200)[None]
    upstream = np.ones_like(x)

    module = torch.nn.RReLU(lower, upper).train()
    expected, (expected_dx,) = _torch_vjp(module, [x], upstream)
    # Two layers with one seed draw the same slopes: one gives the output,
    # the other the gradient.
    y = to_numpy(RReLU(lower, upper, seed=0, dtype="float64")(x, training=True))
    layer = RReLU(lower, upper, seed=0, dtype="float64")
    (dx,) = vjp(lambda t: layer(t, training=True), [x], upstream)

    for out, grad in ((expected, expected_dx), (y, dx)):
        negative, zero, positive = x < 0, x == 0, x > 0
        # Below 0 the gradient is the slope of the output; at 0 it is a
        # drawn slope too; above 0 it is 1.
        np.testing.assert_allclose(grad[negative], out[negative] / x[negative])
        assert np.all((grad[zero] >= lower) & (grad[zero] <= upper))
        assert np.all(grad[positive] == 1.0)
        # Every element draws its own slope.
        assert np.unique(grad[zero]).size > 100


def test_rrelu_training_slopes_follow_the_same_law_as_torch():
    # sample_inputs_rrelu: lower=0, upper=1, training=True.
    x = -np.ones((1, 20000))
    theirs = -torch.nn.functional.rrelu(
        torch.tensor(x), 0.0, 1.0, training=True
    ).numpy()
    ours = -to_numpy(activations.rrelu(x, 0.0, 1.0, training=True, seed=3))
    for slopes in (theirs, ours):
        assert scipy.stats.kstest(slopes.ravel(), "uniform").pvalue > 1e-3
    assert scipy.stats.ks_2samp(theirs.ravel(), ours.ravel()).pvalue > 1e-3


def test_rrelu_error_inputs():
    # error_inputs_rrelu: lower above upper. PyTorch: "Lower bound should
    # be less than or equal to the upper bound"; ours names both.
    x = np.zeros((S, S))
    with pytest.raises(RuntimeError, match="Lower bound should be less"):
        torch.nn.functional.rrelu(torch.tensor(x), 0.3, 0.1, training=True)
    with pytest.raises(ValueError, match=r"Received: lower=0.3, upper=0.1"):
        activations.rrelu(x, 0.3, 0.1, training=True)
    with pytest.raises(ValueError, match=r"Received: lower=0.3, upper=0.1"):
        RReLU(0.3, 0.1)
