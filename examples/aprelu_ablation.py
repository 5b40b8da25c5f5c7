"""Tools for notebook 05's ablations of APReLU's sub-network: where its
slopes start, its batch-norm statistics at test time, and a log of the
slopes during training.

APReLU's slope is alpha = sigmoid(BN_2(Dense_2(relu(BN_1(Dense_1(z)))))).
`BN_2`'s beta and gamma set where alpha starts: with gamma = 0 every slope
is sigmoid(beta), whatever the input.
"""

import contextlib

import keras
import numpy as np

import keras_aprelu


def aprelu_layers(model):
    """Every APReLU layer of `model`, nested models included, in order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras_aprelu.APReLU):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(aprelu_layers(layer))
    return found


def _batch_norms(model):
    return [bn for layer in aprelu_layers(model) for bn in _own(layer)]


def _own(layer):
    return layer.normalization_layers()


def set_initial_slopes(model, alpha=0.1, gamma=0.1):
    """Starts every APReLU slope near `alpha`: the last batch norm's beta
    becomes logit(alpha) and its gamma `gamma` (Keras's default: 0 and 1,
    so that alpha starts as sigmoid(N(0, 1)), 0.5 +- 0.2)."""
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1). Received: alpha={alpha}")
    layers = aprelu_layers(model)
    if not layers:
        raise ValueError(f"`model` has no APReLU layer. Received: model={model.name}")
    beta = float(np.log(alpha / (1 - alpha)))
    for layer in layers:
        bn = layer.normalization_layers()[1]
        bn.beta.assign(np.full(bn.beta.shape, beta, "float32"))
        bn.gamma.assign(np.full(bn.gamma.shape, gamma, "float32"))


@contextlib.contextmanager
def sub_network_in_batch_mode(model):
    """Inside, APReLU's sub-network normalizes with the statistics of each
    batch it is called on (training mode), while every other layer stays in
    inference mode. Call the model eagerly (`model(x)`), not with
    `predict`, whose compiled function would keep the traced behaviour.
    Every weight is as it was afterwards: the moving statistics that batch
    mode updates are restored."""
    layers = aprelu_layers(model)
    saved = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    for layer in layers:
        call = layer.call
        layer.call = lambda inputs, training=None, call=call: call(
            inputs, training=True
        )
    try:
        yield model
    finally:
        for layer in layers:
            layer.__dict__.pop("call", None)
        for variable, value in zip(model.non_trainable_variables, saved, strict=True):
            variable.assign(value)


def evaluate_eagerly(model, x, y, batch_size=128):
    """Accuracy of `model` on (x, y), calling it batch by batch, eagerly."""
    correct = 0
    for start in range(0, len(x), batch_size):
        probs = model(x[start : start + batch_size], training=False)
        predicted = np.argmax(keras.ops.convert_to_numpy(probs), axis=-1)
        correct += int(np.sum(predicted == y[start : start + batch_size]))
    return correct / len(x)


def reestimate_statistics(model, x, batch_size=128):
    """Replaces the moving mean and variance of APReLU's sub-network batch
    norms with their average over the batches of `x` (the cumulative
    average, as PyTorch's `momentum=None`), with the rest of the model in
    inference mode. Changes `model` in place. Notebook 06's ablation, kept
    as it ran; the package's `keras_aprelu.recalibrate_batch_norm` computes
    the exact statistics of every batch norm instead."""
    norms = _batch_norms(model)
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.moving_mean.assign(np.zeros(bn.moving_mean.shape, "float32"))
        bn.moving_variance.assign(np.ones(bn.moving_variance.shape, "float32"))
    layers = aprelu_layers(model)
    try:
        for layer in layers:
            call = layer.call
            layer.call = lambda inputs, training=None, call=call: call(
                inputs, training=True
            )
        for k, start in enumerate(range(0, len(x), batch_size)):
            # moving = m * moving + (1 - m) * batch, with m = k / (k + 1):
            # the mean of the first k + 1 batches' statistics.
            for bn in norms:
                bn.momentum = k / (k + 1)
            model(x[start : start + batch_size], training=False)
    finally:
        for layer in layers:
            layer.__dict__.pop("call", None)
        for bn, momentum in zip(norms, momenta, strict=True):
            bn.momentum = momentum


def _spread(alpha):
    alpha = keras.ops.convert_to_numpy(alpha)
    return {
        "mean": float(alpha.mean()),
        "std": float(alpha.std()),
        "across_samples": float(alpha.std(axis=0).mean()),
    }


def _batch_slopes(layer, x):
    """The slopes as training computes them, with the statistics of the
    batch `x`; the moving statistics that this updates are restored."""
    saved = [keras.ops.convert_to_numpy(v) for v in layer.non_trainable_variables]
    try:
        return layer.slopes(x, training=True)
    finally:
        for variable, value in zip(layer.non_trainable_variables, saved, strict=True):
            variable.assign(value)


class SlopeLog(keras.callbacks.Callback):
    """Every `every` training steps, APReLU's slopes for the model inputs
    `probe` (a Functional or Sequential model), computed two ways: in
    inference mode (`"inference"`, the moving statistics) and as training
    computes them (`"batch"`, the statistics of `probe` as one batch). Each
    gives their mean, their standard deviation over every sample and
    channel, and their spread across samples (the standard deviation over
    the samples, averaged over channels). `history` holds one dict per
    logged step, with one entry per layer; step 0 is before training."""

    def __init__(self, probe, every=20):
        super().__init__()
        self.probe = probe
        self.every = every
        self.history = []
        self.steps = 0

    def _log(self):
        entry = {"step": self.steps}
        layers = aprelu_layers(self.model)
        # The slopes of a layer are a function of its own input.
        inputs = keras.Model(self.model.inputs, [layer.input for layer in layers])
        features = inputs([self.probe], training=False)
        if len(layers) == 1:  # Keras returns a lone output unwrapped
            features = [features]
        for layer, x in zip(layers, features, strict=True):
            entry[layer.name] = {
                "inference": _spread(layer.slopes(x)),
                "batch": _spread(_batch_slopes(layer, x)),
            }
        self.history.append(entry)

    def on_train_begin(self, logs=None):
        self._log()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.every == 0:
            self._log()
