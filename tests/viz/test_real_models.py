"""The models users bring: keras.applications architectures, long loops
over models and targets, and large images."""

import gc
import json
import subprocess
import sys
import textwrap
import warnings
import weakref

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from keras_aprelu.viz import _backend
from tests.backend_testing import backend
from tests.backend_testing import tensorflow_only
from tests.viz import models

# Where an architecture can break a method: the default CAM layer, the
# activations' guided and deconvnet rules, and the gradient through the
# whole model. The methods that wrap the same input gradient or forward
# (SmoothGrad, integrated gradients, gradient x input, occlusion) run on
# two of them; every model kind of tests/viz/models.py runs them all.
WRAPPERS_ON = ("ResNet50", "EfficientNetB0")
APPLICATIONS = {
    # name: (constructor, input size, where Grad-CAM should read its map)
    "ResNet50": ("ResNet50", 64, "layer 'conv5_block3_out'"),
    "MobileNetV2": ("MobileNetV2", 64, "layer 'out_relu'"),
    "EfficientNetB0": ("EfficientNetB0", 64, "layer 'top_activation'"),
    "DenseNet121": ("DenseNet121", 64, "layer 'relu'"),
    # The last block's residual sum is an op: no layer outputs it.
    "ConvNeXtTiny": ("ConvNeXtTiny", 64, "the input of layer 'convnext_tiny_head_gap'"),
    "Xception": ("Xception", 75, "layer 'block14_sepconv2_act'"),
}

ARCHITECTURE_METHODS = {
    "saliency": lambda m, x: viz.saliency(m, x),
    "guided": lambda m, x: viz.saliency(m, x, modifier="guided"),
    "deconvnet": lambda m, x: viz.saliency(m, x, modifier="deconvnet"),
    "grad_cam": lambda m, x: viz.grad_cam(m, x),
    "grad_cam_plus_plus": lambda m, x: viz.grad_cam_plus_plus(m, x),
    "guided_grad_cam": lambda m, x: viz.guided_grad_cam(m, x),
    "hires_cam": lambda m, x: viz.hires_cam(m, x),
    "layer_cam": lambda m, x: viz.layer_cam(m, x),
}
WRAPPER_METHODS = {
    "smoothgrad": lambda m, x: viz.saliency(m, x, smooth_samples=2),
    "integrated_gradients": lambda m, x: viz.integrated_gradients(m, x, steps=2),
    "occlusion": lambda m, x: viz.occlusion(m, x, patch_size=32),
    "gradient_x_input": lambda m, x: viz.gradient_x_input(m, x),
}
MAP_METHODS = {**ARCHITECTURE_METHODS, **WRAPPER_METHODS}


SMALL_METHODS = {
    **MAP_METHODS,
    "occlusion": lambda m, x: viz.occlusion(m, x, patch_size=4),
    "score_cam": lambda m, x: viz.score_cam(m, x),
    "noise_tunnel": lambda m, x: viz.noise_tunnel(viz.saliency, m, x, samples=2),
}


# MobileNetV2, the quickest to compile, runs on every backend; the other
# five on TensorFlow alone, where they compile in seconds.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=()
            if name == "MobileNetV2"
            else tensorflow_only("five more keras.applications models take minutes"),
        )
        for name in APPLICATIONS
    ],
)
def test_keras_applications_run_the_map_methods_with_the_usual_cam_layer(name, caplog):
    constructor, size, expected = APPLICATIONS[name]
    model = getattr(keras.applications, constructor)(
        weights=None, input_shape=(size, size, 3), classes=4
    )
    x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3))
    caplog.set_level("INFO", logger="keras_aprelu.viz")
    methods = MAP_METHODS if name in WRAPPERS_ON else ARCHITECTURE_METHODS
    for method, fn in methods.items():
        with warnings.catch_warnings():
            # swish, sigmoid and GELU have no guided rule: warned, not tested
            warnings.filterwarnings("ignore", "guided backprop has no rule")
            warnings.filterwarnings("ignore", "deconvnet backprop has no rule")
            maps = fn(model, x)
        assert maps.shape == (1, size, size), method
        assert np.isfinite(maps).all() and maps.max() == 1.0, method
    assert f"The CAM uses {expected} " in caplog.text
    if expected.startswith("layer"):
        explicit = viz.grad_cam(model, x, layer=expected.split("'")[1])
        np.testing.assert_array_equal(viz.grad_cam(model, x), explicit)


def test_models_are_freed_and_functions_bounded():
    refs = []
    x = np.random.default_rng(1).random((2, 8, 8, 2)).astype("float32")
    # Every method compiles its own functions: any that closed over the
    # model (or something holding it) would keep it alive here.
    methods = {
        **SMALL_METHODS,
        "grad_cam lambda": lambda m, x: viz.grad_cam(m, x, lambda o: o[:, 1]),
        "deletion": lambda m, x: viz.metrics.deletion(m, x, np.ones(x.shape[:3])),
        "randomization": lambda m, x: viz.metrics.randomization_test(
            m, x, viz.saliency, layers=["dense"]
        ),
        "slopes": lambda m, x: viz.aprelu_slopes(m, x),
        "dead units": lambda m, x: viz.dead_units(m, x),
        "feature maps": lambda m, x: viz.feature_maps(m, x, "conv2"),
    }
    # JAX compiles each model's functions anew: two models show it there.
    count = 5 if backend() == "tensorflow" else 2
    for seed in range(count):
        model = models.randomize(models.functional(), seed=seed)
        for fn in methods.values():
            fn(model, x)
        refs.append(weakref.ref(model))
        del model
    gc.collect()
    keras.backend.clear_session()
    assert [ref() for ref in refs] == [None] * count
    assert not _backend._FUNCTIONS


@tensorflow_only("counts traces with tf.function's tracing count")
def test_fresh_lambdas_of_the_same_code_do_not_retrace():
    model = models.randomize(models.functional(), seed=3)
    x = np.random.default_rng(2).random((2, 8, 8, 2)).astype("float32")

    def fresh_lambda():
        return lambda outputs: outputs[:, 1]

    first = viz.grad_cam(model, x, fresh_lambda(), normalize=False)
    before = dict(_backend.functions_of(model))
    for _ in range(20):
        again = viz.grad_cam(model, x, fresh_lambda(), normalize=False)
    np.testing.assert_array_equal(again, first)
    assert _backend.functions_of(model) == before
    # One function traces the model, one weighs its gradients (the rule).
    assert sorted(key[0] for key in before) == ["cam", "cam rule"]
    assert [fn.experimental_get_tracing_count() for fn in before.values()] == [1, 1]
    np.testing.assert_array_equal(first, viz.grad_cam(model, x, 1, normalize=False))
    # The same code with other captured values is another function.
    maps = {}
    for k in (0, 2):
        maps[k] = viz.grad_cam(model, x, lambda outputs, k=k: outputs[:, k])
    np.testing.assert_array_equal(maps[2], viz.grad_cam(model, x, 2))
    np.testing.assert_array_equal(maps[0], viz.grad_cam(model, x, 0))


def test_the_cache_keeps_the_most_recent_functions(monkeypatch):
    monkeypatch.setattr(_backend, "MAX_FUNCTIONS_PER_MODEL", 3)
    model = models.functional()
    # Not zeros: at the baseline every map is zero, and viz then compiles
    # one more function to tell why.
    x = np.random.default_rng(0).random((1, 8, 8, 2)).astype("float32")
    for steps in range(1, 6):
        viz.integrated_gradients(model, x, steps=steps)
    keys = list(_backend.functions_of(model))
    assert [key[-1] for key in keys] == [3, 4, 5]  # ("ig", ..., steps)


_OCCLUSION_MEMORY = """
import os, resource
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import json, keras, numpy as np
from keras_aprelu import viz

model = keras.Sequential([
    keras.Input((224, 224, 3)),
    keras.layers.Conv2D(4, 8, strides=8),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(2),
])
x = np.random.default_rng(0).random((1, 224, 224, 3)).astype("float32")
viz.occlusion(model, x, patch_size=112, batch_size=8)  # trace once
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
maps = viz.occlusion(model, x, patch_size=16, stride=2, batch_size=8)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grown_mib": (after - before) / 1024, "shape": maps.shape}))
"""


@pytest.mark.slow
def test_occlusion_memory_is_bounded_by_the_batch():
    # 11,025 patch positions on a 224 x 224 image: masks for all of them
    # would take 0.5 GB as booleans and 2.2 GB as floats (3.6 GB measured
    # before the fix). One pass of 8 occluded images is 4.8 MB.
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_OCCLUSION_MEMORY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["shape"] == [1, 224, 224]
    assert result["grown_mib"] < 200, result
