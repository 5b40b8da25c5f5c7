from keras_aprelu.layers.aprelu import APReLU
from keras_aprelu.layers.maxout import Maxout
from keras_aprelu.layers.prelu import PReLU
from keras_aprelu.layers.rrelu import RReLU

__all__ = ["APReLU", "Maxout", "PReLU", "RReLU"]
