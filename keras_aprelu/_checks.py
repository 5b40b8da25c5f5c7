"""Argument and shape checks shared by the layers.

Every message names the argument, states the rule and ends with
`Received: arg=value`.
"""

import numbers


def check_int_axis(axis, *, allow_none=False):
    """Type check for an `axis` argument in `__init__`."""
    if axis is None and allow_none:
        return None
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        kind = "an int or None" if allow_none else "an int"
        raise ValueError(f"`axis` must be {kind}. Received: axis={axis!r}")
    return int(axis)


def check_int_axes(axes, name):
    """Type check for an argument that holds one axis or a list of them;
    returns a list of ints."""
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        return [int(axes)]
    if not isinstance(axes, (list, tuple)) or not all(
        isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes
    ):
        raise ValueError(
            f"`{name}` must be an int or a list of ints. Received: {name}={axes!r}"
        )
    return [int(a) for a in axes]


def check_positive_int(value, name, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def check_positive_float(value, name):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 < value < float("inf")
    ):
        raise ValueError(
            f"`{name}` must be a positive number. Received: {name}={value!r}"
        )
    return float(value)


def check_rank(input_shape, layer_name):
    rank = len(input_shape)
    if rank < 2:
        raise ValueError(
            f"Layer {layer_name} expects inputs of rank >= 2, with the batch "
            f"axis first. Received: input_shape={tuple(input_shape)}"
        )
    return rank


def normalize_axis(axis, rank, name="axis"):
    """Returns `axis` as a non-negative index of a non-batch axis."""
    if not -rank < axis < rank or axis % rank == 0:
        raise ValueError(
            f"`{name}` must index a non-batch axis of the rank-{rank} input: "
            f"1 to {rank - 1}, or -{rank - 1} to -1. Received: {name}={axis}"
        )
    return axis % rank


def known_channels(input_shape, axis, layer_name):
    channels = input_shape[axis]
    if channels is None:
        raise ValueError(
            f"Layer {layer_name} needs the size of its channel axis {axis} "
            f"to be known when it is built. Received: "
            f"input_shape={tuple(input_shape)}"
        )
    return int(channels)


def check_built_shape(input_shape, built_shape, layer_name):
    """Checks a call's input against the shape the layer was built for.

    `built_shape` holds None for the axes that may vary.
    """
    if len(input_shape) != len(built_shape) or any(
        want is not None and got is not None and got != want
        for got, want in zip(input_shape, built_shape, strict=False)
    ):
        raise ValueError(
            f"Layer {layer_name} was built for inputs of shape "
            f"{tuple(built_shape)} (None: any size) and cannot take this "
            f"input. Received: inputs.shape={tuple(input_shape)}"
        )


def check_rrelu_bounds(lower, upper):
    """Validates RReLU's bounds; returns them as floats."""
    try:
        low, high = float(lower), float(upper)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not 0 <= low <= high < float("inf"):
        raise ValueError(
            "`lower` and `upper` must be numbers with 0 <= lower <= upper < inf. "
            f"Received: lower={lower!r}, upper={upper!r}"
        )
    return low, high


def check_grouping(grouping):
    if grouping not in ("contiguous", "strided"):
        raise ValueError(
            '`grouping` must be "contiguous" or "strided". '
            f"Received: grouping={grouping!r}"
        )
    return grouping


def check_divisible(channels, num_units):
    """Maxout's channels split into `num_units` groups; `channels` is None
    while the size is unknown (a symbolic input), to be checked on a call
    that knows it."""
    if channels is not None and channels % num_units:
        raise ValueError(
            f"`num_units` must divide the number of channels: {channels} "
            f"channels cannot be split into {num_units} equal groups. "
            f"Received: num_units={num_units}, channels={channels}"
        )


def check_choice(value, name, choices):
    """`value` if it is one of `choices` (any iterable), else a ValueError
    that lists them."""
    choices = tuple(choices)
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {shown}. Received: {name}={value!r}")
    return value
