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
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    namespace = {
        "x_train": rng.random((64, 28, 28, 1), dtype="float32"),
        "y_train": rng.integers(0, 10, 64),
        "x_test": rng.random((1000, 28, 28, 1), dtype="float32"),
    }
    exec(compile(quickstart_code(), "README.md", "exec"), namespace)

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
