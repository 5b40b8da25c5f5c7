"""No silent non-answers: every map method, on a model of every kind,
returns float32 maps of the documented shape or raises an error that says
why; and maps that are zero only because no gradient reaches what they
explain come with a warning that names the cause.

The models: a CNN, a 1-D CNN, a tabular MLP, an image-and-vector model,
an embedding behind a float input, and keras-hub's ViT and BERT from
small configurations (random weights: the rules hold whatever the
weights).
"""

import re
import warnings

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from tests.viz import models

keras_hub = pytest.importorskip("keras_hub")

GRADIENT = ("saliency", "gradient_x_input", "integrated_gradients", "guided_grad_cam")
RULED = ("lrp", "deeplift")  # rules per layer: refuse a layer without one
CAMS = ("grad_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam", "score_cam")
METHODS = tuple(viz._MAP_METHODS)


def _rng(seed=0):
    return np.random.default_rng(seed)


def cnn():
    return models.functional(), _rng().random((2, 8, 8, 2)).astype("float32")


def one_d():
    inputs = keras.Input((16, 1))
    x = keras.layers.Conv1D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    return model, _rng().normal(size=(2, 16, 1)).astype("float32")


def tabular():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    return model, _rng().normal(size=(2, 6)).astype("float32")


def image_and_vector():
    image, vector = keras.Input((8, 8, 2)), keras.Input((4,))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, vector])
    model = keras.Model([image, vector], keras.layers.Dense(3)(x))
    x = [_rng().random((2, 8, 8, 2)).astype("float32"), _rng(1).normal(size=(2, 4))]
    return model, [x[0], x[1].astype("float32")]


def embedding_behind_float_input():
    # keras.Input's default dtype is float32: the ids are cast to int inside.
    inputs = keras.Input((12,))
    x = keras.layers.Embedding(20, 4)(inputs)
    x = keras.layers.Conv1D(4, 3, padding="same", activation="relu")(x)
    model = keras.Model(
        inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x))
    )
    return model, _rng().integers(0, 20, (2, 12)).astype("float32")


def vit():
    model, _ = models.vit_classifier()
    return model, _rng().random((2, 16, 16, 3)).astype("float32")


def bert():
    model, _ = models.bert_classifier()
    x = {
        "token_ids": _rng().integers(0, 30, (2, 10)).astype("int32"),
        "segment_ids": np.zeros((2, 10), "int32"),
        "padding_mask": np.ones((2, 10), "int32"),
    }
    return model, x


MODELS = {
    "cnn": cnn,
    "one_d": one_d,
    "tabular": tabular,
    "image_and_vector": image_and_vector,
    "embedding": embedding_behind_float_input,
    "vit": vit,
    "bert": bert,
}

# (model, method) pairs that must raise, and what the error must say.
ERRORS = {
    **{
        ("tabular", m): "no layer whose output is a feature map"
        for m in CAMS + ("guided_grad_cam",)
    },
    ("image_and_vector", "score_cam"): "must be one array",
    **{("bert", m): "as integers" for m in GRADIENT + RULED},
    # (The backbone's name depends on how many were built before.)
    **{
        ("vit", m): "vit_patching_and_embedding', a ViTPatchingAndEmbedding"
        for m in RULED
    },
    **{("embedding", m): "no rule for the layer 'embedding" for m in RULED},
    ("bert", "score_cam"): "must be one array",
    **{
        (kind, "gradient_rollout"): "holds no `keras.layers.MultiHeadAttention`"
        for kind in ("cnn", "one_d", "tabular", "image_and_vector", "embedding")
    },
}
# (model, method) pairs whose maps are zero because no gradient reaches
# the input: they must warn so.
NO_GRADIENT = {("embedding", m) for m in GRADIENT}


def _shapes(x):
    """The documented map shape of each input: (batch, *spatial)."""
    if isinstance(x, dict):
        return {k: v.shape[:2] if v.ndim < 3 else v.shape[:-1] for k, v in x.items()}
    if isinstance(x, list):
        return [v.shape if v.ndim < 3 else v.shape[:-1] for v in x]
    return x.shape if x.ndim < 3 else x.shape[:-1]


def _leaves(result, expected):
    if isinstance(expected, dict):
        assert isinstance(result, dict) and list(result) == list(expected)
        return [(result[k], expected[k]) for k in expected]
    if isinstance(expected, list):
        assert isinstance(result, list) and len(result) == len(expected)
        return list(zip(result, expected, strict=True))
    return [(result, expected)]


@pytest.fixture(scope="module", params=list(MODELS))
def case(request):
    if request.param in ("vit", "bert") and keras.config.backend() == "jax":
        # The rules are the backend's gradient and our checks, which the
        # small models test here; XLA's compiles of the two transformers
        # for every method would cost the suite 20 seconds.
        pytest.skip("keras-hub models are swept on TensorFlow and PyTorch")
    keras.utils.set_random_seed(0)
    model, x = MODELS[request.param]()
    return request.param, model, x


@pytest.mark.parametrize("method", METHODS)
def test_every_method_answers_or_says_why(case, method):
    kind, model, x = case
    call = getattr(viz, method)
    kwargs = {"steps": 4} if method == "integrated_gradients" else {}
    if method == "occlusion":
        kwargs = {"patch_size": 2, "stride": 2}
    if (kind, method) in ERRORS:
        with pytest.raises(ValueError) as error:
            call(model, x, **kwargs)
        message = str(error.value)
        assert ERRORS[kind, method] in message, message
        assert re.search(r"Received: \S.*$", message), message
        return

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(model, x, **kwargs)
    said = " ".join(str(w.message) for w in caught)
    leaves = _leaves(result, _shapes(x))
    answered = []
    for maps, shape in leaves:
        if maps is None:
            # Documented for the CAMs only: an input with another number of
            # spatial axes than the layer's (the vector of the model).
            assert method in CAMS or method == "guided_grad_cam", method
            assert len(shape) == 2 and kind == "image_and_vector"
            continue
        assert isinstance(maps, np.ndarray) and maps.dtype == np.float32
        assert maps.shape == tuple(shape)
        assert np.all(np.isfinite(maps))
        answered.append(maps)
    assert answered, "no map at all"

    if (kind, method) in NO_GRADIENT:
        assert all(not np.any(m) for m in answered)
        assert "no gradient of the score reaches the inputs" in said, said
    else:
        # A gradient reaches: no false alarm. Maps may still be all zero by
        # the method's own rule (a CAM's ReLU on signed features, as
        # BERT's, with random weights), never by a lost gradient.
        assert "no gradient" not in said, said
        if not any(np.any(m) for m in answered):
            assert method in CAMS or method == "guided_grad_cam", method


def _cut_model():
    """A CNN whose features pass a stop_gradient before the head."""
    inputs = keras.Input((8, 8, 1))
    features = keras.layers.Conv2D(4, 3, activation="relu", name="used")(inputs)
    cut = keras.layers.Lambda(keras.ops.stop_gradient, name="cut")(features)
    pooled = keras.layers.GlobalAveragePooling2D()(cut)
    return keras.Model(inputs, keras.layers.Dense(3)(pooled))


def test_a_cut_in_the_model_is_named():
    keras.utils.set_random_seed(0)
    model = _cut_model()
    x = _rng().random((2, 8, 8, 1)).astype("float32")
    with pytest.warns(UserWarning, match="no gradient of the score reaches the inputs"):
        maps = viz.saliency(model, x)
    assert not np.any(maps)
    # Grad-CAM on the layer before the cut: named; on the cut's output the
    # gradient reaches, and all is well.
    with pytest.warns(UserWarning, match="reaches the output of layer 'used'"):
        viz.grad_cam(model, x, layer="used")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.any(viz.grad_cam(model, x, layer="cut"))


def test_zero_maps_with_a_gradient_are_not_called_a_cut():
    # At an all-zero input, integrated gradients from a zero baseline is
    # zero, and every ReLU of this model is off, so the gradient vanishes
    # there too: not a cut, as a perturbed input shows. No warning.
    keras.utils.set_random_seed(0)
    model = models.functional()
    x = np.zeros((2, 8, 8, 2), "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps = viz.integrated_gradients(model, x, steps=2)
    assert not np.any(maps)


@pytest.mark.parametrize("method", ["grad_cam", "score_cam", "guided_grad_cam"])
def test_a_cam_that_fits_no_input_is_an_error_not_none(method):
    # A 1-D signal folded into a 4 x 4 image: the convolution's maps have 2
    # spatial axes, the input 1. This returned None (and guided Grad-CAM
    # crashed on it).
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 1))
    folded = keras.layers.Reshape((4, 4, 1))(inputs)
    maps = keras.layers.Conv2D(3, 2, name="conv")(folded)
    pooled = keras.layers.GlobalAveragePooling2D()(maps)
    model = keras.Model(inputs, keras.layers.Dense(2)(pooled))
    x = _rng().random((2, 16, 1)).astype("float32")
    with pytest.raises(ValueError) as error:
        getattr(viz, method)(model, x, layer="conv")
    message = str(error.value)
    assert "maps have 2 spatial axes and the inputs 1" in message
    assert message.endswith("with maps of shape (2, 3, 3)")
