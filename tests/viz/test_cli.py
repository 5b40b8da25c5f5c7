import numpy as np

from keras_aprelu import viz
from keras_aprelu.viz import __main__ as cli
from tests.viz import models


def test_cli_writes_the_figure_and_the_maps(tmp_path, capsys):
    model = models.randomize(models.functional(), seed=4)
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    x = np.random.default_rng(0).random((2, 8, 8, 2)).astype("float32")
    np.save(tmp_path / "inputs.npy", x)
    out, maps = tmp_path / "fig.png", tmp_path / "maps.npy"
    code = cli.main(
        [
            str(model_path),
            str(tmp_path / "inputs.npy"),
            "--method",
            "grad_cam",
            "--target",
            "1",
            "--layer",
            "conv2",
            "--out",
            str(out),
            "--maps",
            str(maps),
        ]
    )
    assert code == 0
    assert out.stat().st_size > 1000
    expected = viz.grad_cam(model, x, 1, layer="conv2")
    np.testing.assert_allclose(np.load(maps), expected, rtol=1e-5, atol=1e-6)
    assert f"figure saved to {out}" in capsys.readouterr().out


def test_cli_occlusion_with_one_target_per_input(tmp_path):
    model = models.randomize(models.functional(), seed=4)
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(1).random((2, 8, 8, 2)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    cli.main(
        [
            str(tmp_path / "m.keras"),
            str(tmp_path / "x.npy"),
            "--method",
            "occlusion",
            "--target",
            "0",
            "2",
            "--patch-size",
            "2",
            "--no-normalize",
            "--out",
            str(tmp_path / "o.png"),
            "--maps",
            str(tmp_path / "o.npy"),
        ]
    )
    expected = viz.occlusion(model, x, [0, 2], patch_size=2, normalize=False)
    np.testing.assert_allclose(
        np.load(tmp_path / "o.npy"), expected, rtol=1e-5, atol=1e-6
    )
