"""Token attributions for text: gradient methods at a layer's output
(`layer="token_embedding"`), against a hand replay of keras-hub's BERT
with the backend's own gradient; and their figure."""

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from keras_aprelu.viz import plotting
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.viz import models

pytest.importorskip("keras_hub")

TARGETS = np.array([1, 0, 1])


@pytest.fixture(scope="module")
def bert():
    keras.utils.set_random_seed(0)
    model, backbone = models.bert_classifier(num_layers=2)
    models.randomize(model, seed=3)
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(1, 30, (3, 10)).astype("int32"),
        "segment_ids": (np.arange(10) >= 6).astype("int32")[None].repeat(3, 0),
        "padding_mask": np.ones((3, 10), "int32"),
    }
    x["padding_mask"][1, 7:] = 0  # the second text is 7 tokens long
    x["token_ids"][1, 7:] = 0
    return model, backbone, x


def _replay(model, backbone, x, tokens):
    """`BertBackbone`'s graph by hand from the token embedding's output
    `tokens`, then the head on the pooled [CLS] token."""
    positions = backbone.get_layer("position_embedding")(tokens)
    segments = backbone.get_layer("segment_embedding")(x["segment_ids"])
    h = backbone.get_layer("embeddings_add")((tokens, positions, segments))
    h = backbone.get_layer("embeddings_layer_norm")(h)
    for block in backbone.transformer_layers:
        h = block(h, padding_mask=x["padding_mask"])
    pooled = backbone.get_layer("pooled_dense")(h[:, 0, :])
    return model.get_layer("head")(pooled)


def _gradient(model, backbone, x, tokens):
    one_hot = np.eye(2, dtype="float32")[TARGETS]
    (grad,) = vjp(lambda e: _replay(model, backbone, x, e), [tokens], one_hot)
    return grad


def test_the_replay_is_the_model(bert):
    model, backbone, x = bert
    tokens = to_numpy(backbone.get_layer("token_embedding")(x["token_ids"]))
    np.testing.assert_allclose(
        to_numpy(_replay(model, backbone, x, tokens)), to_numpy(model(x)), atol=1e-5
    )


def test_integrated_gradients_at_the_embedding_is_the_formula(bert):
    model, backbone, x = bert
    e = to_numpy(backbone.get_layer("token_embedding")(x["token_ids"]))
    steps = 8
    weights = np.full(steps + 1, 1 / steps)
    weights[[0, -1]] /= 2
    mean_grad = sum(
        w * _gradient(model, backbone, x, (a * e).astype("float32"))
        for w, a in zip(weights, np.linspace(0, 1, steps + 1), strict=True)
    )
    expected = (e * mean_grad).sum(-1)
    expected[1, 7:] = 0  # padding
    got = viz.integrated_gradients(
        model, x, TARGETS, layer="token_embedding", steps=steps, normalize=False
    )
    assert got.shape == (3, 10)
    assert np.abs(expected).max() > 1e-3  # a map that could differ
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # Gradient x input and saliency are its one-point cousins.
    grad = _gradient(model, backbone, x, e)
    gxi = (e * grad).sum(-1)
    sal = np.abs(grad).max(-1)
    gxi[1, 7:] = sal[1, 7:] = 0
    kw = {"layer": "token_embedding", "normalize": False}
    np.testing.assert_allclose(
        viz.gradient_x_input(model, x, TARGETS, **kw), gxi, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        viz.saliency(model, x, TARGETS, **kw), sal, rtol=1e-4, atol=1e-6
    )


def test_integrated_gradients_at_the_embedding_is_complete(bert):
    model, backbone, x = bert
    e = to_numpy(backbone.get_layer("token_embedding")(x["token_ids"]))
    maps, gap = viz.integrated_gradients(
        model,
        x,
        TARGETS,
        layer="token_embedding",
        steps=64,
        normalize=False,
        return_gap=True,
    )
    logits = to_numpy(_replay(model, backbone, x, e))
    zero = to_numpy(_replay(model, backbone, x, np.zeros_like(e)))
    change = (logits - zero)[np.arange(3), TARGETS]
    assert np.abs(change).max() > 1e-3  # a change the gap is measured against
    # Padding is dropped from the map, not from the sum the gap checks.
    np.testing.assert_allclose(gap, 0.0, atol=0.01 * np.abs(change).max())
    assert np.abs(maps.sum(-1) - change).max() <= 0.01 * np.abs(change).max() + 1e-3
    assert np.all(maps[1, 7:] == 0.0)


def test_a_baseline_of_token_ids_is_the_layers_output_on_them(bert):
    model, backbone, x = bert
    pad = {**x, "token_ids": np.zeros_like(x["token_ids"])}
    e = to_numpy(backbone.get_layer("token_embedding")(x["token_ids"]))
    e0 = to_numpy(backbone.get_layer("token_embedding")(pad["token_ids"]))
    mean_grad = 0.5 * (
        _gradient(model, backbone, x, e0) + _gradient(model, backbone, x, e)
    )
    expected = ((e - e0) * mean_grad).sum(-1)
    expected[1, 7:] = 0
    got = viz.integrated_gradients(
        model,
        x,
        TARGETS,
        layer="token_embedding",
        baseline=pad,
        steps=1,
        normalize=False,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_integer_inputs_without_a_layer_point_to_the_embedding(bert):
    model, _, x = bert
    for method in (viz.saliency, viz.integrated_gradients, viz.gradient_x_input):
        with pytest.raises(ValueError, match='`layer="token_embedding"`'):
            method(model, x)
    with pytest.raises(ValueError, match=r"smooth_samples=4 with layer='token_"):
        viz.saliency(model, x, layer="token_embedding", smooth_samples=4)


def test_text_rollouts_read_the_cls_row_over_the_tokens(bert):
    model, _, x = bert
    maps = viz.gradient_rollout(model, x, TARGETS, normalize=False)
    assert sorted(maps) == sorted(x)
    assert maps["token_ids"].shape == (3, 10)
    # Masked keys get no attention: padding gets no relevance.
    assert np.all(maps["token_ids"][1, 7:] == 0.0)
    assert np.all(maps["token_ids"][1, :7] > 0.0)


def test_token_figure_colours_each_word_by_its_signed_score():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    words = ["a", "great", "film", "but", "too", "long"]
    scores = np.array([[0.0, 2.0, 0.5, -1.0, -2.0, 0.1, 9.0]])  # 7th: padding
    fig = plotting.plot_token_attributions(words, scores, row_titles=["class 1"])
    try:
        texts = [t for t in fig.axes[0].texts]
        assert [t.get_text() for t in texts] == words
        cmap = plt.get_cmap("RdBu_r")
        faces = [t.get_bbox_patch().get_facecolor() for t in texts]
        # The scale is symmetric about 0 and ends at the largest drawn |score|.
        np.testing.assert_allclose(faces[1], cmap(1.0), atol=1e-6)
        np.testing.assert_allclose(faces[4], cmap(0.0), atol=1e-6)
        np.testing.assert_allclose(faces[0], cmap(0.5), atol=1e-6)
        bar = fig.axes[-1]
        assert bar.get_ylim() == (-2.0, 2.0)
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match=r"Received: scores.shape=\(2, 7\)"):
        plotting.plot_token_attributions(words, np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"no more than its 3 scores"):
        plotting.plot_token_attributions(words, np.zeros(3))
