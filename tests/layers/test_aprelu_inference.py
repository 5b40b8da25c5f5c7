"""APReLU infers as it trains: `fit`, then `evaluate` and `predict`.

On a small burst-in-noise task (examples/burst_task.py), the paper's
sub-network (`normalization="batch"`) gives different answers in inference
mode than in training mode after a few hundred steps, on every backend: the
defect of issue 27. The default gives the same answers in both modes.
"""

import numpy as np
import pytest
from burst_task import accuracy_in_training_mode
from burst_task import build_model
from burst_task import make_data

from tests.backend_testing import to_numpy

LENGTH = 256
BATCH = 32


def trained(seed=0, **layer_kwargs):
    x, y = make_data(512, length=LENGTH, amplitude=3.0, seed=seed)
    model = build_model("aprelu", seed=seed, length=LENGTH, filters=8, **layer_kwargs)
    model.fit(x, y, batch_size=BATCH, epochs=15, verbose=0)
    return model


def both_modes(model, x):
    """The predicted probabilities in inference mode (`predict`) and as
    `fit` computes them (batches of BATCH in training mode)."""
    inference = model.predict(x, batch_size=len(x), verbose=0)
    saved = [to_numpy(v) for v in model.non_trainable_variables]
    training = np.concatenate(
        [
            to_numpy(model(x[i : i + BATCH], training=True))
            for i in range(0, len(x), BATCH)
        ]
    )
    for variable, value in zip(model.non_trainable_variables, saved, strict=True):
        variable.assign(value)
    return inference, training


@pytest.fixture(scope="module")
def held_out():
    return make_data(256, length=LENGTH, amplitude=3.0, seed=100)


def test_the_default_infers_as_it_trains(held_out):
    x, y = held_out
    model = trained()  # the default normalization
    inference, training = both_modes(model, x)
    np.testing.assert_allclose(inference, training, atol=1e-5)
    evaluated = model.evaluate(x, y, batch_size=64, verbose=0)[1]
    assert abs(evaluated - accuracy_in_training_mode(model, x, y, BATCH)) < 0.02
    # It learned: a model that says one class for all would score 0.5.
    assert evaluated > 0.6


def test_the_papers_sub_network_does_not(held_out):
    # The defect the default fixes, kept visible: the same model answers
    # differently in the two modes. What `recalibrate_batch_norm` repairs,
    # stale moving averages, is checked exactly in test_batch_norm.py; on
    # this short run most of the gap is between the statistics of a batch
    # of 32 and those of the population, which no recalibration removes
    # (it narrowed the gap on TensorFlow and JAX and widened it by 1 % on
    # PyTorch, so it is not asserted here).
    x, _ = held_out
    model = trained(normalization="batch")
    inference, training = both_modes(model, x)
    assert np.abs(inference - training).mean() > 0.01
