"""The README's quickstart runs as written, and does what its comments say."""

import pathlib
import re

import keras
import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


ROOT = README.parent
# The pages whose Python blocks a reader copies: the README and the guides
# (not the API reference, whose examples run as doctests).
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
# The first line of a block that runs in the namespace the README's
# quickstart leaves (its model, trained, and the MNIST arrays).
CONTINUES = "# Continues the README's quickstart"


def python_blocks(page):
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)


def quickstart_code():
    blocks = python_blocks(README)
    assert blocks, "README.md has no python block"
    return blocks[0]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """The README's quickstart, run as written, with nothing defined
    beforehand: its namespace and its folder. The MNIST it loads comes from
    the offline loader of the examples (the same arrays as Keras's
    download), cut to 64 training images so that `fit` is quick."""
    import mnist_data

    (x_train, y_train), test = mnist_data.load_data(verbose=False)
    folder = tmp_path_factory.mktemp("quickstart")
    namespace = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            keras.datasets.mnist,
            "load_data",
            lambda: ((x_train[:64], y_train[:64]), test),
        )
        patch.chdir(folder)
        exec(compile(quickstart_code(), "README.md", "exec"), namespace)
    return namespace, folder


def test_readme_quickstart_runs_as_written(quickstart):
    namespace, tmp_path = quickstart
    assert namespace["x_train"].shape == (64, 28, 28, 1)
    assert namespace["x_test"].max() == 1.0

    maps = namespace["maps"]
    assert list(maps) == ["Saliency", "Guided", "Grad-CAM", "Occlusion"]
    for name, values in maps.items():
        assert values.shape == (8, 28, 28), name
        assert values.min() >= 0 and values.max() == 1, name
    assert (tmp_path / "maps.png").stat().st_size > 0

    # "loads back after `import keras_aprelu`", with no custom_objects.
    model = namespace["model"]
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x = namespace["x_test"][:16]
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )

    # The comment on the last line names the key and the shape.
    slopes = namespace["viz"].aprelu_slopes(model, x)
    assert list(slopes) == ["act1"]
    assert slopes["act1"].shape == (16, 32)


def test_readme_is_a_front_page_whose_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert "docs/visualization.md" in local and "docs/api/viz.md" in local
    missing = [link for link in local if not (README.parent / link).exists()]
    assert missing == []


def test_layers_page_example_builds_the_model_it_describes():
    page = README.parent / "docs" / "layers.md"
    code = re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)[0]
    namespace = {}
    exec(compile(code, "docs/layers.md", "exec"), namespace)
    model = namespace["model"]
    # 28 -> 26 -> 24 -> 22 pixels; Maxout(32) halves 64 channels.
    shapes = [tuple(layer.output.shape) for layer in model.layers]
    assert shapes[5] == (None, 22, 22, 32)
    assert model.output_shape == (None, 10)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert [k for k in kinds if k in ("APReLU", "PReLU", "Maxout", "RReLU")] == [
        "APReLU",
        "PReLU",
        "Maxout",
        "RReLU",
    ]


BLOCKS = [
    (page, i, code)
    for page in PAGES
    for i, code in enumerate(python_blocks(page))
    if (page, i) != (README, 0)  # the quickstart, run by its fixture
]


def test_the_pages_have_python_blocks_to_run():
    pages = {page.name for page, _, _ in BLOCKS}
    assert pages >= {"layers.md", "visualization.md", "callbacks.md"}


@pytest.mark.parametrize(
    "page, index, code",
    BLOCKS,
    ids=[f"{page.name}-{index}" for page, index, _ in BLOCKS],
)
def test_every_python_block_runs_as_written(page, index, code, quickstart, tmp_path):
    # A block runs alone, from nothing, unless its first line says that it
    # continues the quickstart; then it runs on a copy of that namespace.
    # Files it writes go to a folder of its own.
    namespace = {}
    if code.startswith(CONTINUES):
        # Its own copy of the trained model, from the quickstart's file, so
        # that a block that trains changes nothing for the others.
        namespace = dict(quickstart[0])
        namespace["model"] = keras.saving.load_model(quickstart[1] / "model.keras")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        exec(compile(code, f"{page.name}, block {index}", "exec"), namespace)
    written = sorted(p.name for p in tmp_path.iterdir())
    if "savefig(" in code:
        assert any(name.endswith((".png", ".pdf")) for name in written), written
    if 'log_dir="logs"' in code:
        assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))
