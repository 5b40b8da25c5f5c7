"""Adaptively parametric ReLU and its relatives for Keras 3, with visualization."""

from keras_aprelu import activations
from keras_aprelu._batch_norm import recalibrate_batch_norm
from keras_aprelu.layers import APReLU
from keras_aprelu.layers import Maxout
from keras_aprelu.layers import PReLU
from keras_aprelu.layers import RReLU

__version__ = "0.2.0"
"""The release, as `pip show keras-aprelu` reports it (the package's single
source of its version)."""

__all__ = [
    "APReLU",
    "Maxout",
    "PReLU",
    "RReLU",
    "__version__",
    "activations",
    "recalibrate_batch_norm",
]
