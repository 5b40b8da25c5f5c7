"""viz on transformers: token grids, the default block, attention rollout
and gradient rollout, against a hand replay of keras-hub's ViT blocks.

The replay runs each block from its sublayers, as `ViTEncoderBlock.call`
does, with Keras's own attention probabilities
(`return_attention_scores=True`) and the backend's own gradient
(`backend_testing.vjp`); the papers' formulas are then written in NumPy.
"""

import json

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from keras_aprelu.viz import _attention
from keras_aprelu.viz import _cam
from keras_aprelu.viz import _grids
from keras_aprelu.viz import plotting
from tests.backend_testing import backend
from tests.backend_testing import run_python
from tests.backend_testing import to_numpy
from tests.backend_testing import vjp
from tests.viz import models

pytest.importorskip("keras_hub")

TARGETS = np.array([0, 2, 1])


@pytest.fixture(scope="module")
def vit():
    keras.utils.set_random_seed(0)
    model, backbone = models.vit_classifier(num_layers=2, head="head")
    models.randomize(model, seed=1)
    x = np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")
    return model, backbone, x


def _blocks(backbone):
    return backbone.get_layer("vit_encoder").encoder_layers


def _replay_block(block, h, shift=None):
    """`ViTEncoderBlock.call` by hand, the attention probabilities taken
    from Keras (plus `shift`, whose gradient is theirs). Returns the
    block's output and its probabilities (batch, heads, T, T)."""
    mha = block.mha
    y = block.layer_norm_1(h)
    _, probabilities = mha(y, y, return_attention_scores=True)
    a = probabilities if shift is None else probabilities + shift
    context = keras.ops.einsum("bnts,bsnh->btnh", a, mha._value_dense(y))
    x = h + mha._output_dense(context)
    return x + block.mlp(block.layer_norm_2(x)), probabilities


def _replay(model, backbone, x, from_block=0, h=None, shifts=None):
    """The logits, from the images (or from the input `h` of block
    `from_block`), and each block's probabilities."""
    if h is None:
        h = backbone.get_layer("vit_patching_and_embedding")(x)
    probabilities = []
    for i, block in enumerate(_blocks(backbone)[from_block:]):
        h, p = _replay_block(block, h, None if shifts is None else shifts[i])
        probabilities.append(p)
    tokens = backbone.get_layer("vit_encoder").layer_norm(h)
    return model.get_layer("head")(tokens[:, 0]), probabilities


def _one_hot(logits_shape):
    return np.eye(logits_shape[-1], dtype="float32")[TARGETS]


def test_the_replay_is_the_model(vit):
    model, backbone, x = vit
    logits, _ = _replay(model, backbone, x)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(model(x)), atol=1e-5)


def test_grad_cam_defaults_to_the_last_blocks_input_on_its_token_grid(vit, caplog):
    model, backbone, x = vit
    embedded = backbone.get_layer("vit_patching_and_embedding")(x)
    h = _blocks(backbone)[0](embedded)  # the input of the last block
    logits, _ = _replay(model, backbone, x, from_block=1, h=h)
    (grads,) = vjp(
        lambda h: _replay(model, backbone, x, from_block=1, h=h)[0],
        [to_numpy(h)],
        _one_hot(logits.shape),
    )
    # 17 tokens on a 16 x 16 image: the class token, then 4 x 4 patches.
    features = to_numpy(h)[:, 1:].reshape(3, 4, 4, -1)
    grads = grads[:, 1:].reshape(3, 4, 4, -1)
    weights = grads.mean(axis=(1, 2), keepdims=True)
    expected = {
        "grad_cam": np.maximum((features * weights).sum(-1), 0),
        "hires_cam": np.maximum((features * grads).sum(-1), 0),
        "layer_cam": np.maximum((features * np.maximum(grads, 0)).sum(-1), 0),
    }
    with caplog.at_level("INFO", logger="keras_aprelu.viz"):
        got = {
            name: getattr(viz, name)(model, x, TARGETS, normalize=False)
            for name in expected
        }
    assert "input of the last transformer block" in caplog.text
    last = f"{backbone.name}/vit_encoder/{_blocks(backbone)[-1].name}"
    assert repr(last) in caplog.text
    for name, want in expected.items():
        assert np.abs(want).max() > 0, name  # a map that could differ
        np.testing.assert_allclose(
            got[name], _cam.upsample(want, (16, 16)), rtol=1e-4, atol=1e-5
        )


def test_attention_rollout_is_abnar_and_zuidemas_formula(vit):
    model, backbone, x = vit
    _, probabilities = _replay(model, backbone, x)
    for fusion, reduce in (("mean", np.mean), ("max", np.max), ("min", np.min)):
        result = np.eye(17)
        for p in probabilities:
            a = 0.5 * reduce(to_numpy(p), axis=1) + 0.5 * np.eye(17)
            a /= a.sum(-1, keepdims=True)
            result = a @ result
        want = result[:, 0, 1:].reshape(3, 4, 4)
        got = viz.attention_rollout(model, x, head_fusion=fusion, normalize=False)
        np.testing.assert_allclose(
            got, _cam.upsample(want, (16, 16)), rtol=1e-4, atol=1e-6
        )


def test_attention_rollout_discards_the_smallest_entries_but_the_class_tokens(vit):
    model, backbone, x = vit
    _, probabilities = _replay(model, backbone, x)
    ratio = 0.9
    result = np.eye(17)
    for p in probabilities:
        fused = to_numpy(p).mean(axis=1).reshape(3, -1)
        for row in fused:
            smallest = np.argsort(row, kind="stable")[: int(row.size * ratio)]
            row[smallest[smallest != 0]] = 0
        a = 0.5 * fused.reshape(3, 17, 17) + 0.5 * np.eye(17)
        a /= a.sum(-1, keepdims=True)
        result = a @ result
    want = result[:, 0, 1:].reshape(3, 4, 4)
    got = viz.attention_rollout(model, x, discard_ratio=ratio, normalize=False)
    plain = viz.attention_rollout(model, x, normalize=False)
    assert not np.allclose(got, plain, atol=1e-3)  # the discard matters here
    np.testing.assert_allclose(got, _cam.upsample(want, (16, 16)), rtol=1e-4, atol=1e-6)


def test_gradient_rollout_is_chefer_gur_and_wolfs_formula(vit):
    model, backbone, x = vit
    logits, probabilities = _replay(model, backbone, x)
    shifts = [np.zeros(p.shape, "float32") for p in probabilities]
    grads = vjp(
        lambda *s: _replay(model, backbone, x, shifts=s)[0],
        shifts,
        _one_hot(logits.shape),
    )
    relevance = np.eye(17)
    for p, g in zip(probabilities, grads, strict=True):
        weighted = np.maximum(g * to_numpy(p), 0).mean(axis=1)
        relevance = relevance + weighted @ relevance
    want = relevance[:, 0, 1:].reshape(3, 4, 4)
    assert np.abs(want - want.mean()).max() > 1e-4  # not a flat map
    got = viz.gradient_rollout(model, x, TARGETS, normalize=False)
    np.testing.assert_allclose(got, _cam.upsample(want, (16, 16)), rtol=1e-4, atol=1e-6)


def test_rollouts_leave_the_model_as_it_was(vit):
    model, _, x = vit
    mha = _blocks(model.get_layer(index=1))[0].mha
    before = models.snapshot(model)
    before["prediction"] = to_numpy(model(x, training=False))
    viz.attention_rollout(model, x)
    viz.gradient_rollout(model, x)
    with pytest.raises(ValueError):  # a call that fails leaves it too
        viz.gradient_rollout(model, x, target=7)
    assert "_compute_attention" not in vars(mha)
    assert "_masked_softmax" not in vars(mha)
    models.assert_unchanged(model, before, x)


def test_the_last_blocks_output_under_a_class_token_head_is_refused(vit):
    model, backbone, x = vit
    blocks = [f"{backbone.name}/vit_encoder/{b.name}" for b in _blocks(backbone)]
    with pytest.raises(ValueError) as error:
        viz.grad_cam(model, x, layer=blocks[-1])
    message = str(error.value)
    assert "No gradient of the score reaches the patch tokens" in message
    assert f"name the block before it ({blocks[0]!r})" in message
    assert message.endswith(f"Received: layer={blocks[-1]!r}")
    # The block before it is the last block's input: the default's map.
    np.testing.assert_allclose(
        viz.grad_cam(model, x, layer=blocks[0]), viz.grad_cam(model, x), atol=1e-6
    )


def test_token_grid_can_be_given(vit):
    model, _, x = vit
    np.testing.assert_allclose(
        viz.grad_cam(model, x, token_grid=(4, 4)), viz.grad_cam(model, x), atol=1e-6
    )
    with pytest.raises(ValueError, match=r"more than the 17 tokens.*=\(5, 4\)$"):
        viz.grad_cam(model, x, token_grid=(5, 4))
    with pytest.raises(ValueError, match=r"Received: token_grid=\(4, 0\)$"):
        viz.hires_cam(model, x, token_grid=(4, 0))


def test_a_cnn_has_no_attention_to_roll_out():
    model = models.functional()
    with pytest.raises(ValueError, match="holds no `keras.layers.MultiHeadAttention`"):
        viz.attention_rollout(model, np.zeros((1, 8, 8, 2), "float32"))
    with pytest.raises(ValueError, match=r"Received: head_fusion='sum'$"):
        viz.attention_rollout(
            model, np.zeros((1, 8, 8, 2), "float32"), head_fusion="sum"
        )


@pytest.mark.parametrize(
    ("tokens", "size", "grid"),
    [
        (65, (32, 32), (1, 8, 8)),  # ViT, patch 4: a class token
        (197, (224, 224), (1, 14, 14)),  # ViT-B/16
        (198, (224, 224), (2, 14, 14)),  # DeiT: class and distillation
        (261, (224, 224), (5, 16, 16)),  # DINOv2/14 with 4 registers
        (784, (224, 224), (0, 28, 28)),  # a Swin stage: no prefix
        (133, (200, 180), (1, 12, 11)),  # patch 16 leaves a border
    ],
)
def test_the_grid_is_inferred_from_the_token_count(tokens, size, grid):
    assert _grids.grid_of((1, tokens, 8), [size], None, "x") == _grids.TokenGrid(*grid)


def test_an_ambiguous_or_impossible_grid_asks_for_token_grid():
    # 17 tokens on 12 x 12: 1 + 4 x 4 patches of 3, or 8 + 3 x 3 of 4.
    with pytest.raises(ValueError) as error:
        _grids.grid_of((1, 17, 8), [(12, 12)], None, "layer 'b'")
    assert "1 prefix token(s) and a 4 x 4 grid, or 8 prefix" in str(error.value)
    assert str(error.value).endswith("Received: token_grid=None")
    assert _grids.grid_of((1, 17, 8), [(12, 12)], (3, 3), "b").prefix == 8
    with pytest.raises(ValueError, match="no grid of square patches"):
        _grids.grid_of((1, 3, 8), [(16, 16)], None, "layer 'b'")
    # A 1-D input reads (batch, steps, channels) as steps, never as a grid.
    assert _grids.grid_of((1, 17, 8), [(17,)], None, "b") is None
    assert _grids.grid_of((1, 4, 4, 8), [(16, 16)], None, "b") is None


def _other_vits():
    """keras-hub's DeiT (a class and a distillation token) and DINOv2 (a
    class token and 2 registers), small, on 16 x 16 images in 4 x 4
    patches, with a head on the class token."""
    import keras_hub

    common = {"num_layers": 2, "num_heads": 2, "hidden_dim": 8}
    backbones = {
        "deit": keras_hub.models.DeiTBackbone(
            image_shape=(16, 16, 3), patch_size=4, intermediate_dim=16, **common
        ),
        "dinov2": keras_hub.models.DINOV2Backbone(
            patch_size=4,
            intermediate_dim=16,
            num_register_tokens=2,
            image_shape=(16, 16, 3),
            position_embedding_shape=(16, 16, 3),
            **common,
        ),
    }
    for name, backbone in backbones.items():
        images = keras.Input((16, 16, 3), name="images")
        given = {"images": images} if name == "dinov2" else images
        head = keras.layers.Dense(3, name="head")(backbone(given)[:, 0])
        yield name, keras.Model(images, head)


def test_deit_and_dinov2_prefix_tokens_are_inferred():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).random((2, 16, 16, 3)).astype("float32")
    blocks = {}
    for name, model in _other_vits():
        models.randomize(model, seed=2)
        blocks[name] = [path.rsplit("/", 1)[-1] for path, _ in _attention.blocks(model)]
        # The inferred grid is the one given: 16 patches after the prefix
        # tokens (2 for DeiT, 3 for DINOv2), whatever their count.
        for method in (viz.grad_cam, viz.gradient_rollout):
            inferred = method(model, x, normalize=False)
            assert np.abs(inferred).max() > 0, (name, method.__name__)
            given = method(model, x, token_grid=(4, 4), normalize=False)
            np.testing.assert_allclose(inferred, given, atol=1e-6)
        # Shifting the grid by one token is a different map.
        shifted = viz.grad_cam(model, x, token_grid=(3, 5), normalize=False)
        assert not np.allclose(shifted, viz.grad_cam(model, x, normalize=False))
        rollout = viz.attention_rollout(model, x, normalize=False)
        assert rollout.shape == (2, 16, 16) and np.all(rollout > 0)
    # The blocks, not the attention layers inside them (DINOv2 wraps its
    # MultiHeadAttention in a layer of its own inside each block).
    assert len(blocks["deit"]) == 2
    assert all(b.startswith("transformer_block") for b in blocks["deit"])
    assert blocks["dinov2"] == ["layers_0", "layers_1"]


X_TEXT = {
    "token_ids": np.array([[2, 5, 9, 4, 7, 0], [2, 8, 3, 0, 0, 0]], "int32"),
    "segment_ids": np.zeros((2, 6), "int32"),
    "padding_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]], "int32"),
}
X_IMAGES = np.random.default_rng(5).random((2, 16, 16, 3)).astype("float32")


def transformer_maps(vit, bert):
    """Every transformer method, as float64 arrays."""
    results = {
        "grad_cam": viz.grad_cam(vit, X_IMAGES, 1, normalize=False),
        "hires_cam": viz.hires_cam(vit, X_IMAGES, 1, normalize=False),
        "score_cam": viz.score_cam(vit, X_IMAGES, 1, normalize=False),
        "attention_rollout": viz.attention_rollout(
            vit, X_IMAGES, head_fusion="max", discard_ratio=0.5, normalize=False
        ),
        "gradient_rollout": viz.gradient_rollout(vit, X_IMAGES, 1, normalize=False),
        "text_ig": viz.integrated_gradients(
            bert, X_TEXT, 0, layer="token_embedding", steps=4, normalize=False
        ),
        "text_rollout": viz.gradient_rollout(bert, X_TEXT, 0, normalize=False)[
            "token_ids"
        ],
    }
    return {k: np.asarray(v, dtype="float64") for k, v in results.items()}


_OTHER_BACKEND = """
import json
import keras
import keras_hub  # registers its layers for loading
from tests.viz.test_transformers import transformer_maps

vit = keras.saving.load_model({vit!r})
bert = keras.saving.load_model({bert!r})
maps = transformer_maps(vit, bert)
print(json.dumps({{k: v.tolist() for k, v in maps.items()}}))
"""


@pytest.mark.skipif(backend() != "tensorflow", reason="starts the other backends")
@pytest.mark.parametrize("other", ["jax", "torch"])
def test_one_keras_file_gives_the_same_transformer_maps_everywhere(other, tmp_path):
    keras.utils.set_random_seed(0)
    vit, _ = models.vit_classifier(num_layers=2, head="head")
    bert, _ = models.bert_classifier(num_layers=2, length=6)
    models.randomize(vit, seed=4)
    models.randomize(bert, seed=5)
    paths = {"vit": str(tmp_path / "vit.keras"), "bert": str(tmp_path / "bert.keras")}
    vit.save(paths["vit"])
    bert.save(paths["bert"])
    expected = transformer_maps(vit, bert)
    result = run_python(_OTHER_BACKEND.format(**paths), KERAS_BACKEND=other)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        assert np.abs(want).max() > 0, name  # a map that could differ
        np.testing.assert_allclose(
            np.array(got[name]), want, rtol=1e-4, atol=1e-5, err_msg=name
        )


# keras-hub's own, on every call of its Swin, plain calls included: its
# window attention drops a mask.
@pytest.mark.filterwarnings("ignore:.*destroy the mask information")
def test_a_swin_stage_is_a_grid_without_prefix_tokens(caplog):
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.SwinTransformerBackbone(
        image_shape=(32, 32, 3),
        patch_size=4,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 2),
        window_size=4,
    )
    images = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling1D()(backbone(images))
    model = keras.Model(images, keras.layers.Dense(3)(pooled))
    models.randomize(model, seed=3)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    norm = f"{backbone.name}/norm"
    with caplog.at_level("INFO", logger="keras_aprelu.viz"):
        default = viz.hires_cam(model, x, normalize=False)
    # Its stages output (batch, H * W, C): the default is the last one
    # before the pooling, 16 tokens on a 4 x 4 grid, no prefix token.
    assert f"layer {norm!r}" in caplog.text
    given = viz.hires_cam(model, x, layer=norm, token_grid=(4, 4), normalize=False)
    assert np.abs(default).max() > 0
    np.testing.assert_allclose(default, given, atol=1e-6)
    # Swin's window attention is not a MultiHeadAttention: no rollout.
    with pytest.raises(ValueError, match="holds no `keras.layers.MultiHeadAttention`"):
        viz.attention_rollout(model, x)


def test_attention_maps_are_each_heads_class_token_row(vit):
    model, backbone, x = vit
    _, probabilities = _replay(model, backbone, x)
    blocks = _blocks(backbone)
    first = to_numpy(probabilities[0])[:, :, 0, 1:].reshape(3, 2, 4, 4)
    last = to_numpy(probabilities[-1])[:, :, 0, 1:].reshape(3, 2, 4, 4)
    np.testing.assert_allclose(viz.attention_maps(model, x), last, atol=1e-6)
    # A block by name, or its attention layer by object.
    np.testing.assert_allclose(
        viz.attention_maps(model, x, blocks[0].name), first, atol=1e-6
    )
    np.testing.assert_allclose(
        viz.attention_maps(model, x, blocks[0].mha), first, atol=1e-6
    )
    with pytest.raises(ValueError, match=r"holds 2: .*Received: layer='vit_encoder'"):
        viz.attention_maps(model, x, "vit_encoder")


def test_feature_maps_of_tokens_are_drawn_on_their_grid(vit):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    model, backbone, x = vit
    block = _blocks(backbone)[0]
    tokens = viz.feature_maps(model, x[:1], block)[0]  # as the layer gives it
    assert tokens.shape == (17, 8)
    fig = plotting.plot_feature_maps(model, x[0], block)
    try:
        drawn = [ax.images[0].get_array() for ax in fig.axes if ax.images]
        assert len(drawn) == 8
        grid = tokens[1:].reshape(4, 4, 8)  # the class token left out
        for k, image in enumerate(drawn):
            np.testing.assert_allclose(np.asarray(image), grid[..., k], atol=1e-6)
    finally:
        plt.close(fig)
