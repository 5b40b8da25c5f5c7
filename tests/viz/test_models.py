"""Invariants over every method: API styles, batching, targets, and a model
left exactly as it was."""

import logging

import numpy as np
import pytest

from keras_aprelu import viz
from tests.backend_testing import tensorflow_only
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.viz import models

RNG = np.random.default_rng(5)

METHODS = {
    "saliency": lambda m, x, t, **k: viz.saliency(m, x, t, **k),
    "guided": lambda m, x, t, **k: viz.saliency(m, x, t, modifier="guided", **k),
    "deconvnet": lambda m, x, t, **k: viz.saliency(m, x, t, modifier="deconvnet", **k),
    "smoothgrad": lambda m, x, t, **k: viz.saliency(m, x, t, smooth_samples=3, **k),
    "integrated_gradients": lambda m, x, t, **k: viz.integrated_gradients(
        m, x, t, steps=8, **k
    ),
    "grad_cam": lambda m, x, t, **k: viz.grad_cam(m, x, t, layer="conv2", **k),
    "grad_cam_plus_plus": lambda m, x, t, **k: viz.grad_cam_plus_plus(
        m, x, t, layer="conv2", **k
    ),
    "guided_grad_cam": lambda m, x, t, **k: viz.guided_grad_cam(
        m, x, t, layer="prelu", **k
    ),
    "occlusion": lambda m, x, t, **k: viz.occlusion(
        m, x, t, patch_size=3, stride=2, **k
    ),
    "gradient_x_input": lambda m, x, t, **k: viz.gradient_x_input(m, x, t, **k),
    "hires_cam": lambda m, x, t, **k: viz.hires_cam(m, x, t, layer="conv2", **k),
    "layer_cam": lambda m, x, t, **k: viz.layer_cam(m, x, t, layer="prelu", **k),
    "score_cam": lambda m, x, t, **k: viz.score_cam(m, x, t, layer="prelu", **k),
}


@pytest.fixture(scope="module")
def twins():
    reference = models.randomize(models.functional(), seed=11)
    built = {"functional": reference}
    for name in ("sequential", "nested", "subclassed"):
        model = getattr(models, name)()
        models.copy_weights(reference, model)
        built[name] = model
    return built


@pytest.fixture(scope="module")
def batch():
    return RNG.random((4, 8, 8, 2)).astype("float32")


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("style", ["sequential", "nested", "subclassed"])
def test_every_api_style_gives_the_functional_maps(twins, batch, method, style):
    expected = METHODS[method](
        twins["functional"], batch, [0, 1, 2, 1], normalize=False
    )
    got = METHODS[method](twins[style], batch, [0, 1, 2, 1], normalize=False)
    assert got.shape == (4, 8, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", list(METHODS))
def test_batching_and_target_forms_agree(twins, batch, method):
    model = twins["functional"]
    together = METHODS[method](model, batch, 2, normalize=False, batch_size=3)
    as_list = METHODS[method](model, batch, [2, 2, 2, 2], normalize=False)
    np.testing.assert_allclose(together, as_list, rtol=1e-4, atol=1e-6)
    if method != "smoothgrad":  # its noise depends on the index in the batch
        one_by_one = np.concatenate(
            [
                METHODS[method](model, batch[i : i + 1], 2, normalize=False)
                for i in range(len(batch))
            ]
        )
        np.testing.assert_allclose(together, one_by_one, rtol=1e-4, atol=1e-6)
    # Normalized: the magnitude over its maximum, so zero stays zero (an
    # all-zero map, as a CAM whose weighted sum is negative everywhere,
    # stays all zero).
    normalized = METHODS[method](model, batch, 2, batch_size=3)
    magnitude = np.abs(together).reshape(4, -1)
    peak = magnitude.max(axis=1, keepdims=True)
    expected = np.divide(magnitude, peak, out=np.zeros_like(magnitude), where=peak > 0)
    np.testing.assert_allclose(
        normalized.reshape(4, -1), expected, rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("method", list(METHODS))
def test_the_model_is_unchanged_after_a_call_and_after_a_failed_call(
    twins, batch, method
):
    for style in ("functional", "nested", "subclassed"):
        model = twins[style]
        before = models.snapshot(model)
        before["prediction"] = to_numpy(model(batch, training=False))
        METHODS[method](model, batch, None)
        models.assert_unchanged(model, before, batch)

        def failing(outputs):
            raise RuntimeError("a score that fails while tracing")

        with pytest.raises(RuntimeError, match="a score that fails"):
            METHODS[method](model, batch, failing)
        models.assert_unchanged(model, before, batch)


@tensorflow_only("counts traces with tf.function's tracing count")
def test_gradient_functions_are_compiled_once(twins, batch):
    from keras_aprelu.viz import _backend

    model = twins["functional"]
    viz.saliency(model, batch, 0)
    functions = _backend.functions_of(model)
    for _ in range(3):
        viz.saliency(model, batch[:3], [1, 2, 0])
    assert _backend.functions_of(model) == functions
    # ("saliency", layout, modifier, logits, target, samples, times_input)
    (fn,) = [
        f
        for key, f in functions.items()
        if key[0] == "saliency" and key[2:] == (None, True, None, 0, False)
    ]
    assert fn.experimental_get_tracing_count() <= 2


def test_unknown_spatial_sizes_and_three_channels():
    import keras

    import keras_aprelu

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras_aprelu.APReLU(name="aprelu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    for shape in ((2, 9, 7, 3), (1, 12, 12, 3)):
        x = RNG.random(shape).astype("float32")
        sal = viz.saliency(model, x, 1, normalize=False)
        assert sal.shape == shape[:3]
        # max |gradient| over the three channels, from the backend's own
        # autodiff, outside viz
        (grad,) = vjp(lambda x: model(x)[:, 1], [x], np.ones(len(x), "float32"))
        expected = np.abs(grad).max(axis=-1)
        np.testing.assert_allclose(sal, expected, rtol=1e-5, atol=1e-7)
        assert viz.grad_cam(model, x, layer="aprelu").shape == shape[:3]
        assert viz.occlusion(model, x, patch_size=3).shape == shape[:3]


def test_mixed_precision_model_gives_float32_maps(twins, batch):
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    model = models.functional()
    keras.mixed_precision.set_global_policy("float32")
    models.copy_weights(twins["functional"], model)
    expected = viz.grad_cam(
        twins["functional"], batch, 1, layer="conv2", normalize=False
    )
    got = viz.grad_cam(model, batch, 1, layer="conv2", normalize=False)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0.05, atol=0.02 * expected.max())


def test_many_models_in_a_loop_raise_no_retracing_warning(batch):
    # Every model gets its own compiled function, traced once per input
    # signature. TensorFlow's frequent-retracing detector must not take these
    # for one function retraced over and over, as it did when they shared a
    # code object.
    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        for seed in range(7):
            model = models.randomize(models.functional(), seed=seed)
            # Seven samples in batches of three: a full and a partial batch.
            viz.dead_units(model, np.concatenate([batch, batch])[:7], batch_size=3)
            viz.saliency(model, batch, 0)
    finally:
        logger.removeHandler(handler)
    assert not [m for m in handler.messages if "retracing" in m]
