"""The whole suite runs on TensorFlow; the layer tests also run on JAX and
PyTorch (`KERAS_BACKEND=jax pytest tests/layers ...`, as `make test` does).
"""

import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# float64 gradient checks need 64-bit JAX; set before JAX is imported.
os.environ.setdefault("JAX_ENABLE_X64", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# The examples' modules (the MNIST models, the burst task) are imported by
# their tests and by the layer tests that train on their data.
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

if keras.config.backend() == "tensorflow":
    import tensorflow as tf

    # Two logical CPUs, so that MirroredStrategy has two replicas. This must
    # run before TensorFlow initializes its devices, hence at import time.
    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    collect_ignore = ["data"]  # a script that wrote the release fixture
else:
    # What needs TensorFlow: viz, the examples, export and TFLite, and the
    # tests that start the other backends in subprocesses.
    collect_ignore = [
        "data",
        "examples",
        "test_package.py",
        "test_readme.py",
        "layers/test_deployment.py",
        "layers/test_backends.py",
    ]


@pytest.fixture(scope="session")
def strategy():
    # One strategy for the whole run: a second MirroredStrategy in the same
    # process reuses the collective instance keys of the first.
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    return tf.distribute.MirroredStrategy(devices)


@pytest.fixture(autouse=True)
def _fixed_seed_and_policy():
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")
    keras.config.set_floatx("float32")


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["np"] = np
