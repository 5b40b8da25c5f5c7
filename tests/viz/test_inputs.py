"""What users pass: several inputs, streams, channels first, NaN, and the
argument checks every method shares."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aprelu
from keras_aprelu import viz
from keras_aprelu.viz import _backend
from tests.backend_testing import run_python
from tests.backend_testing import tensorflow_only
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.viz import models

RNG = np.random.default_rng(21)

MAP_METHODS = {
    "saliency": lambda m, x, t=None, **k: viz.saliency(m, x, t, **k),
    "guided": lambda m, x, t=None, **k: viz.saliency(m, x, t, modifier="guided", **k),
    "smoothgrad": lambda m, x, t=None, **k: viz.saliency(
        m, x, t, smooth_samples=2, **k
    ),
    "integrated_gradients": lambda m, x, t=None, **k: viz.integrated_gradients(
        m, x, t, steps=4, **k
    ),
    "grad_cam": lambda m, x, t=None, **k: viz.grad_cam(m, x, t, **k),
    "grad_cam_plus_plus": lambda m, x, t=None, **k: viz.grad_cam_plus_plus(
        m, x, t, **k
    ),
    "guided_grad_cam": lambda m, x, t=None, **k: viz.guided_grad_cam(m, x, t, **k),
    "occlusion": lambda m, x, t=None, **k: viz.occlusion(
        m, x, t, patch_size=3, stride=2, **k
    ),
    "gradient_x_input": lambda m, x, t=None, **k: viz.gradient_x_input(m, x, t, **k),
    "hires_cam": lambda m, x, t=None, **k: viz.hires_cam(m, x, t, **k),
    "layer_cam": lambda m, x, t=None, **k: viz.layer_cam(m, x, t, **k),
    "noise_tunnel": lambda m, x, t=None, **k: viz.noise_tunnel(
        viz.gradient_x_input, m, x, t, samples=2, seed=3, **k
    ),
    "score_cam": lambda m, x, t=None, **k: viz.score_cam(m, x, t, **k),
}


def twin_models(seed=3):
    """The same CNN channels last and channels first, with equal weights."""
    built = {}
    for fmt in ("channels_last", "channels_first"):
        axis = -1 if fmt == "channels_last" else 1
        shape = (10, 8, 3) if fmt == "channels_last" else (3, 10, 8)
        built[fmt] = keras.Sequential(
            [
                keras.Input(shape),
                keras.layers.Conv2D(4, 3, padding="same", data_format=fmt),
                keras_aprelu.APReLU(axis=axis, name="act1"),
                keras.layers.MaxPooling2D(2, data_format=fmt),
                keras.layers.Conv2D(5, 3, padding="same", data_format=fmt),
                keras.layers.ReLU(name="act2"),
                keras.layers.GlobalAveragePooling2D(data_format=fmt),
                keras.layers.Dense(3),
            ]
        )
    models.randomize(built["channels_last"], seed)
    built["channels_first"].set_weights(built["channels_last"].get_weights())
    return built


@models.needs_channels_first
@pytest.mark.parametrize("method", list(MAP_METHODS))
def test_channels_first_twin_gives_the_same_maps(method):
    twins = twin_models()
    x = RNG.random((2, 10, 8, 3)).astype("float32")
    last = MAP_METHODS[method](twins["channels_last"], x, 1, normalize=False)
    first = MAP_METHODS[method](
        twins["channels_first"], np.moveaxis(x, -1, 1), 1, normalize=False
    )
    assert last.shape == first.shape == (2, 10, 8)
    np.testing.assert_allclose(first, last, rtol=1e-4, atol=1e-5)
    assert np.abs(last).max() > 0


@models.needs_channels_first
def test_channels_first_feature_insight():
    twins = twin_models()
    x = RNG.random((4, 10, 8, 3)).astype("float32")
    xf = np.moveaxis(x, -1, 1)
    assert viz.dead_units(twins["channels_last"], x) == viz.dead_units(
        twins["channels_first"], xf
    )
    slopes_last = viz.aprelu_slopes(twins["channels_last"], x)
    slopes_first = viz.aprelu_slopes(twins["channels_first"], xf)
    np.testing.assert_allclose(slopes_first["act1"], slopes_last["act1"], rtol=1e-5)


_WITHOUT_ONEDNN = """
import numpy as np
from keras_aprelu import viz
from keras_aprelu.viz import _backend
from tests.viz.test_inputs import twin_models

assert not _backend.runs_channels_first()
twins = twin_models()
assert viz.saliency(twins["channels_last"], np.ones((1, 10, 8, 3))).shape == (1, 10, 8)
try:
    viz.grad_cam(twins["channels_first"], np.ones((1, 3, 10, 8)))
except RuntimeError as error:
    print(str(error))
"""


@tensorflow_only("TensorFlow's missing NCHW kernels without oneDNN")
def test_channels_first_without_onednn_gets_one_clear_error():
    # Without oneDNN (the default on AMD CPUs), TensorFlow has no NCHW
    # convolution on the CPU. The user is told why and what to do, not
    # handed TensorFlow's UnimplementedError; channels last still works.
    result = run_python(_WITHOUT_ONEDNN, TF_ENABLE_ONEDNN_OPTS="0")
    assert result.returncode == 0, result.stderr[-3000:]
    message = result.stdout.strip()
    assert message.startswith("This model is channels_first"), message
    assert "TF_ENABLE_ONEDNN_OPTS=1" in message
    assert "channels_last" in message


@tensorflow_only("TensorFlow's missing NCHW kernels without oneDNN")
def test_only_the_nchw_error_is_explained():
    nchw = tf.errors.UnimplementedError(
        None,
        None,
        "The Conv2D op currently only supports the NHWC tensor format on the "
        "CPU. The op was given the format: NCHW",
    )
    with pytest.raises(RuntimeError, match="This model is channels_first") as info:
        with _backend.explained_errors():
            raise nchw
    assert info.value.__cause__ is nchw  # TensorFlow's own error is kept
    other = tf.errors.UnimplementedError(None, None, "something else")
    with pytest.raises(tf.errors.UnimplementedError, match="something else"):
        with _backend.explained_errors():
            raise other


def two_input_model():
    image = keras.Input((8, 8, 2), name="image")
    vector = keras.Input((3,), name="vector")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(image)
    x = keras_aprelu.PReLU(name="act")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, keras.layers.Dense(4, name="embed")(vector)])
    model = keras.Model([image, vector], keras.layers.Dense(3, name="head")(x))
    return models.randomize(model, seed=4)


def test_several_inputs_give_one_map_per_input():
    model = two_input_model()
    xa = RNG.random((3, 8, 8, 2)).astype("float32")
    xb = RNG.random((3, 3)).astype("float32")
    sal = viz.saliency(model, [xa, xb], 2, normalize=False)
    assert isinstance(sal, list) and len(sal) == 2
    # The backend's own autodiff, outside viz.
    ga, gb = vjp(lambda a, b: model([a, b])[:, 2], [xa, xb], np.ones(3, "float32"))
    np.testing.assert_allclose(sal[0], np.abs(ga).max(-1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sal[1], np.abs(gb), rtol=1e-5, atol=1e-7)
    # A dict keyed by input name gives a dict.
    by_name = viz.saliency(model, {"image": xa, "vector": xb}, 2, normalize=False)
    assert set(by_name) == {"image", "vector"}
    np.testing.assert_array_equal(by_name["image"], sal[0])
    # The CAM fits the image; the vector has no map of the layer's rank.
    cam = viz.grad_cam(model, [xa, xb], 2)
    assert cam[0].shape == (3, 8, 8) and cam[1] is None
    # Occlusion hides each input in turn; IG's completeness covers both.
    # patch_size and stride: a list holds one per input.
    occ = viz.occlusion(model, [xa, xb], 2, patch_size=[4, 1], normalize=False)
    assert occ[0].shape == (3, 8, 8) and occ[1].shape == (3, 3)
    with models.logits(model, "head"):
        clean = to_numpy(model([xa, xb]))[:, 2]
        hidden = to_numpy(model([xa, np.where(np.eye(3)[0], 0, xb)]))[:, 2]
    np.testing.assert_allclose(occ[1][:, 0], clean - hidden, rtol=1e-4, atol=1e-5)
    ig, gap = viz.integrated_gradients(
        model, [xa, xb], 2, steps=64, normalize=False, return_gap=True
    )
    assert np.abs(gap).max() < 1e-2 * np.abs(clean).max() + 1e-3


def test_a_dataset_is_streamed_and_gives_the_array_maps():
    model = models.randomize(models.functional(), seed=6)
    x = RNG.random((7, 8, 8, 2)).astype("float32")
    y = np.zeros(7, "int32")
    for method, fn in MAP_METHODS.items():
        expected = fn(model, x, [0, 1, 2, 0, 1, 2, 0], normalize=False)
        stream = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
        got = fn(model, stream, [0, 1, 2, 0, 1, 2, 0], normalize=False, batch_size=2)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6, err_msg=method)
    stream = tf.data.Dataset.from_tensor_slices(x).batch(4)
    np.testing.assert_array_equal(
        viz.dead_units(model, stream), viz.dead_units(model, x)
    )
    with pytest.raises(ValueError, match="`target` must hold one class per input"):
        viz.saliency(model, stream, [0, 1])


def test_a_dataset_is_checked_element_by_element():
    model = models.functional()
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 8, 8, 2))).batch(2)
    with pytest.raises(ValueError, match="`inputs` holds no sample"):
        viz.saliency(model, empty)

    def generate():
        yield np.zeros((2, 8, 8, 2), "float32")
        yield np.zeros((2, 8, 7, 2), "float32")

    ragged = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec((None, 8, None, 2), tf.float32)
    )
    with pytest.raises(
        ValueError,
        match=r"`inputs` must have shape \(batch, 8, 8, 2\).*"
        r"Received: inputs.shape=\(2, 8, 7, 2\)",
    ):
        viz.saliency(model, ragged)


def test_a_dataset_is_streamed_not_materialized(monkeypatch):
    # Reads of the stream and batches handed to the model interleave: the
    # first batch is processed long before the stream ends.
    from keras_aprelu.viz import _inputs

    model = models.functional()
    events = []

    def generate():
        for i in range(6):
            events.append(f"read {i}")
            yield RNG.random((2, 8, 8, 2)).astype("float32")

    checked = _inputs._checked

    def spy(array, key, kind, start):
        events.append(f"batch {start}")
        return checked(array, key, kind, start)

    monkeypatch.setattr(_inputs, "_checked", spy)
    stream = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec((None, 8, 8, 2), tf.float32)
    )
    maps = viz.saliency(model, stream, 0, batch_size=2)
    assert maps.shape == (12, 8, 8)
    last_read = max(i for i, e in enumerate(events) if e.startswith("read"))
    assert events.index("batch 2") < last_read, events


@pytest.mark.parametrize("method", list(MAP_METHODS))
def test_nan_and_inf_are_refused(method):
    model = models.functional()
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    x[1, 4, 5, 0] = np.nan
    with pytest.raises(
        ValueError,
        match=r"`inputs` must be finite.*Received: inputs\[\(1, 4, 5, 0\)\]=nan",
    ):
        MAP_METHODS[method](model, x)
    x[1, 4, 5, 0] = np.inf
    with pytest.raises(ValueError, match="`inputs` must be finite"):
        MAP_METHODS[method](model, x)


def test_non_finite_arguments_are_refused():
    model = models.functional()
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    with pytest.raises(ValueError, match="`smooth_noise` must be a finite number"):
        viz.saliency(model, x, smooth_samples=2, smooth_noise=float("inf"))
    with pytest.raises(ValueError, match="`baseline` must be finite"):
        viz.integrated_gradients(model, x, baseline=np.nan)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"normalize": "yes"}, TypeError, "`normalize` must be True or False"),
        ({"logits": 1}, TypeError, "`logits` must be True or False"),
        ({"progress": None}, TypeError, "`progress` must be True or False"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be a positive int"),
    ],
)
@pytest.mark.parametrize("method", list(MAP_METHODS))
def test_flags_are_checked_alike_everywhere(method, kwargs, error, message):
    model = models.functional()
    with pytest.raises(error, match=message):
        MAP_METHODS[method](model, np.zeros((1, 8, 8, 2)), **kwargs)


def test_a_zero_d_integer_target_is_an_int():
    model = models.randomize(models.functional())
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    np.testing.assert_array_equal(
        viz.saliency(model, x, np.array(2)), viz.saliency(model, x, 2)
    )


def test_patch_size_message_shows_what_was_passed():
    with pytest.raises(ValueError, match=r"Received: patch_size='4'"):
        viz.occlusion(models.functional(), np.zeros((1, 8, 8, 2)), patch_size="4")


def test_error_inside_a_compiled_function_reaches_the_user_plain():
    model = models.functional()

    def bad(outputs):
        return outputs  # (batch, classes): not one score per input

    with pytest.raises(ValueError) as info:
        viz.grad_cam(model, np.zeros((2, 8, 8, 2)), bad)
    assert str(info.value).startswith("A callable `target` must return one score")
    assert "in user code" not in str(info.value)


def test_a_never_called_subclassed_model_is_built_on_the_inputs():
    reference = models.randomize(models.functional(), seed=2)
    fresh = models.Subclassed(name="fresh")
    assert not fresh.built
    x = RNG.random((2, 8, 8, 2)).astype("float32")
    maps = viz.grad_cam(fresh, x, 1, layer="prelu")
    assert maps.shape == (2, 8, 8)
    models.copy_weights(reference, fresh)
    np.testing.assert_allclose(
        viz.grad_cam(fresh, x, 1, layer="prelu"),
        viz.grad_cam(reference, x, 1, layer="prelu"),
        rtol=1e-5,
        atol=1e-6,
    )


def test_progress_is_offered_by_every_batch_function(capsys):
    model = models.functional()
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    viz.feature_maps(model, x, "conv1", progress=True)
    viz.dead_units(model, x, progress=True)
    viz.aprelu_slopes(model, x, progress=True)
    assert capsys.readouterr().out.count("3/3") == 3


@models.needs_channels_first
def test_channels_first_twin_gives_the_same_activation_maximization():
    # The start image and the jitter are the same, and only the spatial
    # axes are shifted and averaged.
    twins = twin_models()
    kwargs = dict(steps=6, jitter=1, return_scores=True)
    last, last_scores = viz.activation_maximization(
        twins["channels_last"], "act1", [0, 2], **kwargs
    )
    first, first_scores = viz.activation_maximization(
        twins["channels_first"], "act1", [0, 2], **kwargs
    )
    assert first.shape == (2, 3, 10, 8)
    np.testing.assert_allclose(np.moveaxis(first, 1, -1), last, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(first_scores, last_scores, rtol=1e-4, atol=1e-5)
