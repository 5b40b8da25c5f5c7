"""The README's quickstart runs as written, and does what its comments say."""

import pathlib
import re

import keras
import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def quickstart_code():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert blocks, "README.md has no python block"
    return blocks[0]


def test_readme_quickstart_runs_as_written(tmp_path, monkeypatch):
    # As written, with nothing defined beforehand. The MNIST it loads comes
    # from the offline loader of the examples (the same arrays as Keras's
    # download), cut to 64 training images so that `fit` is quick.
    import mnist_data

    (x_train, y_train), test = mnist_data.load_data(verbose=False)
    monkeypatch.setattr(
        keras.datasets.mnist,
        "load_data",
        lambda: ((x_train[:64], y_train[:64]), test),
    )
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(quickstart_code(), "README.md", "exec"), namespace)
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
