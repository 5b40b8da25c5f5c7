"""PyTorch kernels, for `_ops` to dispatch to.

`_ops` imports this module only under the PyTorch backend.
`benchmarks/bench_layers.py` measures each kernel against its twins.
"""

import torch


def parametric_relu(x, alpha):
    """relu(x) + alpha * min(x, 0), with `alpha` broadcastable to `x`.

    One call of `torch._prelu_kernel`, the elementwise kernel behind
    `torch.nn.PReLU` (in every PyTorch since 2.0), which broadcasts
    `alpha` like any binary op (autograd sums its gradient back to the
    shape of `alpha`): one pass forward and one backward, which keeps only
    `x` and `alpha`. It beat the keras.ops forms and a
    hand-written backward over a three-pass in-place forward
    (bench_layers.py; README, "Performance"). Its input gradient at
    x == 0 is alpha, as on every backend.
    """
    return torch._prelu_kernel(x, alpha)
