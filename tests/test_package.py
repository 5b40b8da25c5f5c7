import os
import pathlib
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import keras_aprelu
import keras_aprelu.activations
from tests.backend_testing import run_python


def test_public_names():
    assert sorted(keras_aprelu.__all__) == [
        "APReLU",
        "Maxout",
        "PReLU",
        "RReLU",
        "__version__",
        "activations",
        "recalibrate_batch_norm",
    ]
    from keras_aprelu import viz

    assert len(viz.__all__) == 26
    for name in viz.__all__:
        assert callable(getattr(viz, name)), name
    assert sorted(keras_aprelu.activations.__all__) == [
        "aprelu",
        "maxout",
        "prelu",
        "rrelu",
    ]
    from keras_aprelu import callbacks

    assert callbacks.__all__ == [
        "ActivationMonitor",
        "AttributionMaps",
        "RecalibrateBatchNorm",
    ]
    # The map methods the callbacks accept are viz functions that exist.
    assert all(callable(getattr(viz, name)) for name in viz._MAP_METHODS)
    assert keras_aprelu.__version__ == "0.2.0"


def test_layers_work_without_matplotlib():
    # Keras imports matplotlib whenever it is installed, so installing
    # without it is simulated by an import hook that refuses it.
    result = run_python(
        """
        import sys

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name == "matplotlib" or name.startswith("matplotlib."):
                    raise ImportError("matplotlib is blocked for this test")

        sys.meta_path.insert(0, Refuse())
        import numpy as np
        import keras
        import keras_aprelu
        assert "matplotlib" not in sys.modules
        x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
        model = keras.Sequential([keras.Input((4, 4, 3)), keras_aprelu.APReLU(),
                                  keras_aprelu.PReLU(), keras_aprelu.RReLU(),
                                  keras_aprelu.Maxout(3)])
        print(model.predict(x, verbose=0).shape)
        # viz computes without matplotlib; only drawing needs it.
        from keras_aprelu import viz
        maps = viz.saliency(model, x, lambda out: keras.ops.sum(out, axis=(1, 2, 3)))
        print(maps.shape)
        try:
            viz.plot_activation_functions()
        except ImportError as error:
            print(error)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-3:] == [
        "(2, 4, 4, 3)",
        "(2, 4, 4)",
        "keras_aprelu.viz.plotting needs matplotlib. Install it with: "
        'pip install "keras-aprelu[viz]"',
    ]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_jax_and_torch_users_need_no_tensorflow(backend, tmp_path):
    # TensorFlow is the `[tensorflow]` extra, not a dependency: under JAX
    # and PyTorch the layers, every viz map method, the CLI and both
    # logging callbacks run without it.
    result = run_python(
        f"""
        import sys

        # As if not installed: `import tensorflow` raises ImportError, and
        # importlib.util.find_spec("tensorflow") (PyTorch asks) is None.
        sys.modules["tensorflow"] = None
        import numpy as np
        import keras
        import keras_aprelu
        from keras_aprelu import callbacks, viz
        from keras_aprelu.viz import __main__ as cli

        x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
        model = keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"),
            keras_aprelu.APReLU(name="act"), keras_aprelu.PReLU(),
            keras_aprelu.RReLU(), keras_aprelu.Maxout(2),
            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3),
        ])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
        model.fit(x, np.arange(4) % 3, epochs=1, verbose=0, callbacks=[
            callbacks.ActivationMonitor(x, log_dir={str(tmp_path / "logs")!r}),
            callbacks.AttributionMaps(x, {str(tmp_path / "logs")!r}),
        ])
        shapes = {{name: getattr(viz, name)(model, x).shape
                  for name in viz._MAP_METHODS}}
        print(sorted(set(shapes.values())))
        model.save({str(tmp_path / "m.keras")!r})
        np.save({str(tmp_path / "x.npy")!r}, x)
        cli.main([{str(tmp_path / "m.keras")!r}, {str(tmp_path / "x.npy")!r},
                  "--out", {str(tmp_path / "fig.png")!r}])
        print(sys.modules["tensorflow"], keras.config.backend())
        """,
        KERAS_BACKEND=backend,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"None {backend}"
    assert "[(4, 8, 8)]" in lines
    assert (tmp_path / "fig.png").stat().st_size > 0


@pytest.mark.slow
def test_the_built_wheel_installs_and_runs_outside_the_repository(tmp_path):
    """`make dist`'s wheel, installed into a fresh virtual environment with
    no access to the repository: the layers, viz and the package data."""
    repo = pathlib.Path(__file__).resolve().parents[1]
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", dist],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    built = sorted(p.name for p in dist.iterdir())
    version = keras_aprelu.__version__
    assert built == [
        f"keras_aprelu-{version}-py3-none-any.whl",
        f"keras_aprelu-{version}.tar.gz",
    ]
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir()],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # A fresh environment; its dependencies (Keras, TensorFlow, ...) come
    # from this one through a path entry, which does not run this one's
    # .pth files, so the editable install of the repository stays out.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    fresh = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")
    (pathlib.Path(fresh) / "dependencies.pth").write_text(ours + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            dist / built[0],
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    work = tmp_path / "elsewhere"
    work.mkdir()
    code = textwrap.dedent(
        """
        import importlib.metadata, pathlib
        import numpy as np
        import keras
        import keras_aprelu
        from keras_aprelu import viz

        where = pathlib.Path(keras_aprelu.__file__).parent
        print(where)
        print((where / "py.typed").is_file())
        print(importlib.metadata.version("keras-aprelu"))
        x = np.linspace(-1, 1, 2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
        layer = keras_aprelu.PReLU(alpha_initializer=keras.initializers.Constant(0.5))
        print(float(np.abs(keras.ops.convert_to_numpy(layer(x))
                           - np.where(x > 0, x, 0.5 * x)).max()))
        model = keras.Sequential([keras.Input((4, 4, 3)), keras_aprelu.APReLU(),
                                  keras.layers.Flatten(), keras.layers.Dense(2)])
        maps = viz.saliency(model, x, 1, normalize=False)
        with __import__("tensorflow").GradientTape() as tape:
            xt = __import__("tensorflow").constant(x)
            tape.watch(xt)
            score = model(xt)[:, 1]
        expected = np.abs(tape.gradient(score, xt).numpy()).max(axis=-1)
        print(maps.shape, float(np.abs(maps - expected).max()) < 1e-6)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [python, "-c", code], cwd=work, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == str(pathlib.Path(fresh) / "keras_aprelu")
    assert lines[1:4] == ["True", version, "0.0"]
    assert lines[4] == "(2, 4, 4) True"
