"""A layer-test helper in public Keras API terms.

Keras tests its layers with `keras.src.testing.TestCase.run_layer_test`,
which is private and changes between releases; keras-hub rebuilt it on the
public API, and this is the same idea, sized for our four layers. One call
checks what every layer must do, on whichever backend Keras runs; the
per-layer files then check values and gradients against references.
"""

import os
import tempfile

import keras
import numpy as np

from tests.backend_testing import backend
from tests.backend_testing import to_numpy

# (run_eagerly, jit_compile) of the fit steps. TensorFlow: eager, graph and
# XLA; JAX: jitted; PyTorch: eager (torch.compile is out of scope).
FIT_MODES = {
    "tensorflow": ((True, False), (False, False), (False, True)),
    "jax": ((False, True),),
    "torch": ((False, False),),
}
# Every mixed policy each backend supports on the CPU, passed per layer as
# keras-hub does, never through the global policy.
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
# The layer classes whose mixed-precision fit step has run: one
# configuration per class trains under each policy (a compiled step costs
# seconds on JAX); every configuration still checks its dtypes.
_MIXED_FIT_DONE = set()


def _sample(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _model(layer, input_shape, call_kwargs):
    inputs = keras.Input(input_shape[1:])
    return keras.Model(inputs, layer(inputs, **call_kwargs))


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shape,
    *,
    expected_output_shape,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights=0,
    expected_num_trainable_params=None,
    expected_num_seed_generators=0,
    deterministic=True,
):
    """Checks one layer configuration end to end.

    - `get_config`/`from_config` and Keras serialization round trips;
    - the weight and parameter counts after an eager call;
    - eager and symbolic calls, and `compute_output_shape`;
    - `.keras` save and `load_model` with no `custom_objects`, giving the
      same predictions;
    - one `fit` step in each execution mode of the backend (`FIT_MODES`),
      with a finite loss, which changes the layer's weights if it has any
      (not each of them: a bias that feeds batch norm, as in APReLU, gets no
      gradient);
    - each mixed policy, passed as the layer's `dtype`: float32 weights,
      half-precision outputs, and a `fit` step (for the first configuration
      of each layer class in the run).

    `deterministic=False` (RReLU) skips the comparisons that need the layer
    to give the same output twice in training.
    """
    x = _sample(input_shape)

    # Config and serialization round trips.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(restored) is layer_cls
    assert restored.get_config() == config

    # Eager call and weights.
    y = layer(x)
    assert tuple(y.shape) == tuple(expected_output_shape)
    assert tuple(layer.compute_output_shape(input_shape)) == tuple(
        expected_output_shape
    )
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights
    if expected_num_trainable_params is not None:
        count = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        assert count == expected_num_trainable_params
    seed_generators = [
        v for v in vars(layer).values() if isinstance(v, keras.random.SeedGenerator)
    ]
    assert len(seed_generators) == expected_num_seed_generators

    # Symbolic call: a Functional model with the batch size left unknown.
    symbolic_layer = layer_cls(**init_kwargs)
    model = _model(symbolic_layer, input_shape, {})
    assert tuple(model.output.shape[1:]) == tuple(expected_output_shape[1:])
    prediction = model.predict(x, verbose=0)
    assert prediction.shape == tuple(expected_output_shape)
    if deterministic:
        np.testing.assert_allclose(
            prediction, to_numpy(symbolic_layer(x)), rtol=1e-6, atol=1e-6
        )

    # .keras round trip: the layer is registered, so no custom_objects.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1]) is layer_cls
    assert loaded.layers[-1].get_config() == symbolic_layer.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), prediction)

    # One training step in each execution mode.
    for run_eagerly, jit_compile in FIT_MODES[backend()]:
        _check_fit_step(
            layer_cls, init_kwargs, input_shape, x, run_eagerly, jit_compile
        )

    # Mixed precision.
    for policy in MIXED_POLICIES:
        mixed = layer_cls(**init_kwargs, dtype=policy)
        y = mixed(x)
        assert keras.backend.standardize_dtype(y.dtype) == policy[len("mixed_") :]
        for weight in mixed.weights:
            assert keras.backend.standardize_dtype(weight.dtype) == "float32"
        if (layer_cls, policy) in _MIXED_FIT_DONE:
            continue
        _MIXED_FIT_DONE.add((layer_cls, policy))
        optimizer = keras.optimizers.SGD(0.1)
        if policy == "mixed_float16":
            # A small initial loss scale, so that the first step does not
            # overflow float16 and get skipped, as the default 2**15 may.
            optimizer = keras.optimizers.LossScaleOptimizer(
                optimizer, initial_scale=4.0
            )
        _check_fit_step(
            layer_cls,
            {**init_kwargs, "dtype": policy},
            input_shape,
            x,
            False,
            False,
            optimizer,
        )


def _check_fit_step(
    layer_cls, init_kwargs, input_shape, x, run_eagerly, jit, optimizer=None
):
    layer = layer_cls(**init_kwargs)
    inputs = keras.Input(input_shape[1:])
    hidden = keras.layers.Dense(input_shape[-1])(inputs)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(layer(hidden)))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.1),
        loss="mse",
        run_eagerly=run_eagerly,
        jit_compile=jit,
    )
    # A copy: np.array(variable) may alias the buffer that SGD updates in place.
    before = [to_numpy(w).copy() for w in layer.trainable_weights]
    history = model.fit(x, np.ones((len(x), 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    if before:
        after = [to_numpy(w) for w in layer.trainable_weights]
        assert any(
            not np.array_equal(old, new) for old, new in zip(before, after, strict=True)
        )
