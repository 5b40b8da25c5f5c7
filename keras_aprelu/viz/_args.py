"""Checks of the plain arguments every viz function shares.

Each raises a `ValueError` (or `TypeError` for the wrong kind of object)
that names the argument, states the rule and ends with
`Received: arg=value`.
"""

import math
import numbers

import numpy as np

from keras_aprelu._checks import check_choice  # noqa: F401  (one check each)
from keras_aprelu._checks import check_positive_int  # noqa: F401


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )


def check_int(value, name, minimum):
    if not is_int(value) or value < minimum:
        rule = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")
    return int(value)


def check_number(value, name, minimum=None, maximum=None):
    """A finite real number, within [`minimum`, `maximum`] where given."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    )
    if not ok:
        if minimum is not None and maximum is not None:
            rule = f"a number in [{minimum}, {maximum}]"
        else:
            rule = "a finite number" + ("" if minimum is None else f" >= {minimum}")
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")
    return float(value)


def per_axis(value, name, spatial):
    """A positive int, or one per spatial axis, as a tuple."""
    given = value
    if is_int(value):
        value = (int(value),) * len(spatial)
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == len(spatial)
        and all(is_int(v) and v >= 1 for v in value)
    )
    if not ok:
        raise ValueError(
            f"`{name}` must be a positive int or one per spatial axis of the "
            f"inputs {tuple(spatial)}. Received: {name}={given!r}"
        )
    return tuple(int(v) for v in value)
