"""PyTorch kernels with hand-written gradients, for `_ops` to dispatch to.

`_ops` imports this module only under the PyTorch backend. The backward is
written in `keras.ops`; the forward uses PyTorch's in-place ops where they
save passes over memory, which `keras.ops` cannot express.
`benchmarks/bench_layers.py` measures each kernel against its twins.
"""

import torch
from keras import ops

from keras_aprelu import _ops


def parametric_relu(x, alpha):
    """relu(x) + alpha * min(x, 0), with `alpha` broadcastable to `x`.

    The forward is clamp(x, max=0), scaled by alpha and added to relu(x) in
    place: three passes and one temporary, where the same formula in
    `keras.ops` takes four and three (bench_layers.py: APReLU inference
    1.33x -> 1.26x of ReLU, training 1.50x -> 1.25x, against
    APReLU-clip-autodiff), and
    torch.where(x > 0, x, alpha * x) is slower still (PReLU-where,
    APReLU-where). The backward keeps only `x` and `alpha`, where autodiff
    keeps the intermediates (0.83-0.86x the memory). The input's gradient
    at x == 0 is alpha, as on every backend: clamp passes the gradient at
    its bound, where min(x, 0) would split it in two.
    """
    alpha, broadcast = _ops.to_rank_of(x, alpha)

    @ops.custom_gradient
    def prelu(x, alpha):
        def grad(*args, upstream=None):
            dy = _ops._upstream(args, upstream)
            dx = ops.where(x > 0, dy, dy * alpha)
            negative = torch.clamp(x, max=0.0)
            return dx, ops.sum(dy * negative, axis=broadcast, keepdims=True)

        y = torch.clamp(x, max=0.0)
        y.mul_(alpha)
        return y.add_(torch.relu(x)), grad

    return prelu(x, alpha)
