import re

import numpy as np
import pytest

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


@pytest.mark.parametrize(
    "extra, call",
    [
        (
            ["--method", "lrp", "--composite", "epsilon_gamma_box", "--low", "0"],
            lambda m, x: viz.lrp(
                m, x, 1, composite="epsilon_gamma_box", low=0.0, normalize=False
            ),
        ),
        (
            ["--method", "deeplift", "--baseline", "0.5"],
            lambda m, x: viz.deeplift(m, x, 1, baseline=0.5, normalize=False),
        ),
    ],
)
def test_cli_lrp_and_deeplift(tmp_path, extra, call):
    model, x, model_path, x_path = saved(tmp_path)
    maps = str(tmp_path / "r.npy")
    args = [model_path, x_path, *extra, "--target", "1", "--no-normalize"]
    assert cli.main([*args, "--out", str(tmp_path / "r.png"), "--maps", maps]) == 0
    expected = call(model, x)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(np.load(maps), expected, rtol=1e-5, atol=1e-7)


def saved(tmp_path, count=2):
    model = models.randomize(models.functional(), seed=4)
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(3).random((count, 8, 8, 2)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    return model, x, str(tmp_path / "m.keras"), str(tmp_path / "x.npy")


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    err = capsys.readouterr().err
    return info.value.code, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--target", "9"], r"--target must lie in \[0, 2\].*Received: --target 9"),
        (["--batch-size", "0"], r"--batch-size must be at least 1\. Received: "),
        (
            ["--method", "smoothgrad", "--samples", "0"],
            r"--samples must be at least 1\. Received: --samples 0",
        ),
        # The API's errors name the flags, not the keyword arguments.
        (
            ["--method", "smoothgrad", "--noise", "-1"],
            r"--noise must be .*Received: --noise -1",
        ),
        (["--method", "saliency", "--layer", "conv2"], "--layer does not apply"),
        (["--method", "occlusion", "--steps", "3"], "--steps does not apply"),
        (["--method", "deeplift", "--gamma", "1"], "--gamma does not apply"),
        (
            ["--method", "lrp", "--epsilon", "-1"],
            r"--epsilon must be .*Received: --epsilon -1",
        ),
        (
            ["--method", "attention_rollout", "--target", "1"],
            r"--target does not apply to --method attention_rollout.*--target 1$",
        ),
        (
            ["--method", "gradient_rollout", "--head-fusion", "max"],
            "--head-fusion does not apply to --method gradient_rollout",
        ),
        (
            ["--method", "attention_rollout"],
            r"holds no `keras.layers.MultiHeadAttention`.*Received: model=",
        ),
        (
            ["--method", "grad_cam", "--token-grid", "0", "2"],
            r"--token-grid must be None or \(rows, cols\)"
            r".*Received: --token-grid \(0, 2\)$",
        ),
    ],
)
def test_cli_errors_are_one_line_with_status_2(tmp_path, capsys, extra, message):
    _, _, model_path, x_path = saved(tmp_path)
    code, err = run_cli([model_path, x_path, *extra], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("python -m keras_aprelu.viz: error: ")
    assert re.search(message, err), err


def test_cli_refuses_missing_and_wrong_files_in_one_line(tmp_path, capsys):
    _, x, model_path, x_path = saved(tmp_path)
    np.savez(tmp_path / "x.npz", x=x)
    cases = [
        ([str(tmp_path / "missing.keras"), x_path], "`model` must be an existing"),
        ([model_path, str(tmp_path / "x.npz")], "not an .npz archive"),
        ([model_path, model_path], "`inputs` must be a .npy file"),
        ([x_path, x_path], "`model` must be a .keras file, a zip archive"),
    ]
    for argv, message in cases:
        code, err = run_cli(argv, capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert message in err, err


def test_cli_writes_exactly_the_files_it_names(tmp_path, capsys):
    model, x, model_path, x_path = saved(tmp_path, count=20)
    out = tmp_path / "fig.png"
    code = cli.main(
        [
            model_path,
            x_path,
            "--method",
            "smoothgrad",
            "--samples",
            "3",
            "--noise",
            "0.1",
            "--maps",
            str(tmp_path / "maps_noext"),
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    written = tmp_path / "maps_noext.npy"
    assert f"saved to {written}" in printed and written.exists()
    assert "(the first 8 of 20 inputs)" in printed
    np.testing.assert_allclose(
        np.load(written),
        viz.saliency(model, x, smooth_samples=3, smooth_noise=0.1),
        rtol=1e-5,
        atol=1e-6,
    )


def test_cli_on_a_conv1d_model(tmp_path, capsys):
    import keras

    model = keras.Sequential(
        [
            keras.Input((32, 3)),
            keras.layers.Conv1D(4, 5, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2),
        ]
    )
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(3, 32, 3)))
    code = cli.main(
        [
            str(tmp_path / "m.keras"),
            str(tmp_path / "x.npy"),
            "--out",
            str(tmp_path / "f.png"),
        ]
    )
    assert code == 0 and (tmp_path / "f.png").stat().st_size > 1000


def test_cli_checks_output_folders_before_computing(tmp_path, capsys, monkeypatch):
    _, _, model_path, x_path = saved(tmp_path)
    computed = []
    monkeypatch.setattr(cli, "compute", lambda *a: computed.append(1))
    for flag in ("--out", "--maps"):
        target = str(tmp_path / "no" / "such" / "fig.png")
        code, err = run_cli([model_path, x_path, flag, target], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert f"{flag} must be a file in an existing folder" in err
        assert f"Received: {flag} {target}" in err
    assert not computed


def test_cli_refuses_files_that_are_not_keras_archives(tmp_path, capsys):
    import zipfile

    _, _, _, x_path = saved(tmp_path)
    text = tmp_path / "text.keras"
    text.write_text("not a model")
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("notes.txt", "no config.json here")
    cases = [
        (text, r"`model` must be a .keras file, a zip archive .*text\.keras"),
        (other_zip, r"`model` could not be loaded as a Keras model \(There is no"),
    ]
    for path, message in cases:
        code, err = run_cli([str(path), x_path], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert re.search(message, err), err


def test_cli_prints_the_path_it_wrote_and_titles_the_figure(
    tmp_path, capsys, monkeypatch
):
    _, _, model_path, x_path = saved(tmp_path)
    from keras_aprelu.viz import plotting

    drawn = {}
    original = plotting.plot_heatmaps

    def recording(images, maps, **kwargs):
        drawn.update(columns=list(maps), rows=kwargs.get("row_titles"))
        return original(images, maps, **kwargs)

    monkeypatch.setattr(plotting, "plot_heatmaps", recording)
    out = tmp_path / "fig_noext"
    cli.main(
        [model_path, x_path, "--method", "grad_cam", "--target", "1", "--out", str(out)]
    )
    written = tmp_path / "fig_noext.png"
    assert written.exists() and not out.exists()
    assert f"figure saved to {written}" in capsys.readouterr().out
    assert drawn == {"columns": ["Grad-CAM"], "rows": ["class 1", "class 1"]}


def test_cli_titles_rows_with_the_predicted_class(tmp_path, capsys, monkeypatch):
    model, x, model_path, x_path = saved(tmp_path)
    from keras_aprelu.viz import plotting

    rows = []
    original = plotting.plot_heatmaps

    def recording(images, maps, **kwargs):
        rows.extend(kwargs.get("row_titles"))
        return original(images, maps, **kwargs)

    monkeypatch.setattr(plotting, "plot_heatmaps", recording)
    cli.main([model_path, x_path, "--out", str(tmp_path / "f.png")])
    predicted = np.argmax(model.predict(x, verbose=0), axis=-1)
    assert rows == [f"class {c}" for c in predicted]


def test_cli_rolls_out_a_saved_vit(tmp_path, capsys):
    pytest.importorskip("keras_hub")
    model, _ = models.vit_classifier(num_layers=2, head="head")
    models.randomize(model, seed=2)
    model.save(tmp_path / "vit.keras")
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    for method, flags, expected in (
        (
            "attention_rollout",
            ["--head-fusion", "max", "--discard-ratio", "0.5"],
            viz.attention_rollout(model, x, head_fusion="max", discard_ratio=0.5),
        ),
        (
            "gradient_rollout",
            ["--target", "2", "--token-grid", "4", "4"],
            viz.gradient_rollout(model, x, 2),
        ),
    ):
        maps = tmp_path / f"{method}.npy"
        argv = [str(tmp_path / "vit.keras"), str(tmp_path / "x.npy")]
        argv += ["--method", method, *flags, "--maps", str(maps)]
        argv += ["--out", str(tmp_path / f"{method}.png")]
        assert cli.main(argv) == 0
        np.testing.assert_allclose(np.load(maps), expected, rtol=1e-5, atol=1e-6)
