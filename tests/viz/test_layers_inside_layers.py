"""Every argument that names a layer reaches the layers a model holds at
any depth: sublayers of layers too (keras-hub's ViT keeps its transformer
blocks in a list inside the encoder layer), by path, bare name or object."""

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from tests.backend_testing import to_numpy
from tests.viz import models

pytest.importorskip("keras_hub")


def vit_classifier(head="head"):
    keras.utils.set_random_seed(0)
    return models.vit_classifier(num_layers=2, head=head)


def test_a_block_inside_the_encoder_layer_by_path_name_or_object():
    model, backbone = vit_classifier()
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    encoder = backbone.get_layer("vit_encoder")
    last = encoder.encoder_layers[-1]
    path = f"{backbone.name}/vit_encoder/{last.name}"
    by_path = viz.feature_maps(model, x, path)
    np.testing.assert_array_equal(viz.feature_maps(model, x, last.name), by_path)
    np.testing.assert_array_equal(viz.feature_maps(model, x, last), by_path)
    # A hand replay of the encoder's end: its LayerNorm of the last block's
    # output is the backbone's output (65 = 1 class token + 4 x 4 patches).
    assert by_path.shape == (2, 17, 8)
    np.testing.assert_allclose(
        to_numpy(encoder.layer_norm(by_path)),
        to_numpy(backbone(x)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_a_bare_name_prefers_the_models_own_layer_and_errors_list_nested_paths():
    # Each block's MLP holds a Dense named "dense_1"; so does the head here.
    model, backbone = vit_classifier(head="dense_1")
    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype("float32")
    assert viz.feature_maps(model, x, "dense_1").shape == (1, 3)
    with pytest.raises(ValueError, match=r"It names several layers; use a path: "):
        viz.feature_maps(model, x, "mha")
    with pytest.raises(ValueError) as error:
        viz.feature_maps(model, x, "transformer_blok_2")
    assert f"{backbone.name}/vit_encoder/transformer_block_2" in str(error.value)


def test_a_layer_of_another_model_is_still_refused():
    model, _ = vit_classifier()
    stranger = models.functional().get_layer("conv1")
    with pytest.raises(ValueError, match="is not part of the model"):
        viz.feature_maps(model, np.zeros((1, 16, 16, 3), "float32"), stranger)
