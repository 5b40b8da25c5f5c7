import keras

from keras_aprelu import _checks
from keras_aprelu import activations


@keras.saving.register_keras_serializable(package="keras_aprelu")
class RReLU(keras.layers.Layer):
    """Randomized leaky ReLU.

    In training every element draws its own negative slope from
    U(lower, upper) at every call; in inference the slope is fixed at the
    mean (lower + upper) / 2, as in `torch.nn.RReLU` and
    `tfa.activations.rrelu`. Like `keras.layers.GaussianNoise`, the layer is
    random only when called with `training=True` (as `fit` does).

    Formula:

    ```
    f(x) = x      if x > 0
    f(x) = a * x  otherwise, a ~ U(lower, upper) in training,
                  a = (lower + upper) / 2 in inference
    ```

    At x = 0 the gradient is a, on every backend, as in `torch.nn.RReLU`.

    Args:
        lower: Lower bound of the slope, with 0 <= lower <= upper.
            Defaults to `1/8`.
        upper: Upper bound of the slope. Defaults to `1/3`.
        seed: Int seed of the layer's `keras.random.SeedGenerator`, for
            reproducible slopes. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A floating-point tensor.
        training: Whether to draw random slopes. Defaults to `False`.

    Input shape:
        Any shape.

    Output shape:
        The input shape.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> import keras_aprelu
    >>> layer = keras_aprelu.RReLU(lower=0.1, upper=0.3, seed=1)
    >>> y = layer(np.array([[-1.0, 2.0]], "float32"))  # inference: slope 0.2
    >>> keras.ops.convert_to_numpy(y)
    array([[-0.2,  2. ]], dtype=float32)
    >>> y = layer(np.full((1, 1000), -1.0, "float32"), training=True)
    >>> y = keras.ops.convert_to_numpy(y)
    >>> bool(np.all((-y >= 0.1) & (-y <= 0.3))), bool(y.std() > 0.05)
    (True, True)

    Reference:
        B. Xu, N. Wang, T. Chen and M. Li, "Empirical Evaluation of Rectified
        Activations in Convolutional Network", arXiv:1505.00853, 2015. The
        paper writes the slope as 1/a with a ~ U(3, 8); the defaults here
        are the same range, 1/8 to 1/3, drawn uniformly in the slope itself
        as PyTorch and TensorFlow Addons do. The inference slope is their
        mean (PyTorch's choice), not the paper's 2 / (l + u) on a.
    """

    def __init__(self, lower=1 / 8, upper=1 / 3, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.lower, self.upper = _checks.check_rrelu_bounds(lower, upper)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        return activations.rrelu(
            inputs,
            lower=self.lower,
            upper=self.upper,
            training=bool(training),
            seed=self.seed_generator,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"lower": self.lower, "upper": self.upper, "seed": self.seed})
        return config

    def compute_output_shape(self, input_shape):
        return input_shape
