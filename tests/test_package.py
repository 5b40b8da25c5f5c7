import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import keras_aprelu
import keras_aprelu.activations
from tests.backend_testing import run_for_json
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

    assert len(viz.__all__) == 34
    assert {"attention_maps", "attention_rollout", "gradient_rollout"} <= set(
        viz.__all__
    )
    assert "plot_token_attributions" in viz.__all__
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


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """`make dist`: the wheel and the sdist, built once and checked as PyPI
    would; returns the wheel's path."""
    repo = pathlib.Path(__file__).resolve().parents[1]
    dist = tmp_path_factory.mktemp("dist")
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
    return dist / built[0]


def _fresh_venv(path):
    """A new virtual environment with no packages; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    return path / "bin" / "python"


def _pip(python, *args):
    """This environment's pip, run on the environment of `python`."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, *args],
        capture_output=True,
        text=True,
    )


# What a JAX or PyTorch user runs: the four layers in a model trained with
# both callbacks (where the extra brings tensorboard), every map method,
# the noise tunnel, the metrics, the layer tools, a figure and the CLI.
_USER_SESSION = """
import importlib.util, json, sys
import numpy as np
import keras
import keras_aprelu
from keras_aprelu import callbacks, viz
from keras_aprelu.viz import __main__ as cli
from keras_aprelu.viz import metrics

out = sys.argv[1]
x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
model = keras.Sequential([
    keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv"),
    keras_aprelu.APReLU(name="act"), keras_aprelu.PReLU(),
    keras_aprelu.RReLU(), keras_aprelu.Maxout(2),
    keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3),
])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
logging = importlib.util.find_spec("tensorboard") is not None
model.fit(x, np.arange(4) % 3, epochs=1, verbose=0, callbacks=[
    callbacks.ActivationMonitor(x, log_dir=out + "/logs"),
    callbacks.AttributionMaps(x, out + "/logs"),
] if logging else [])
# gradient_rollout explains transformers (tests/viz/test_transformers.py).
shapes = {name: getattr(viz, name)(model, x).shape
          for name in viz._MAP_METHODS if name != "gradient_rollout"}
shapes["noise_tunnel"] = viz.noise_tunnel(viz.saliency, model, x, samples=2).shape
maps = viz.saliency(model, x)
scores = [metrics.deletion(model, x, maps, steps=4).shape,
          metrics.insertion(model, x, maps, steps=4).shape]
tools = [viz.feature_maps(model, x, "act").shape, viz.filters(model, "conv").shape,
         viz.aprelu_slopes(model, x)["act"].shape,
         viz.activation_maximization(model, "conv", 0, steps=2).shape]
viz.plot_heatmaps(x, {"saliency": maps}).savefig(out + "/maps.png")
model.save(out + "/m.keras")
np.save(out + "/x.npy", x)
cli.main([out + "/m.keras", out + "/x.npy", "--out", out + "/cli.png"])
print(json.dumps({
    "backend": keras.config.backend(),
    "tensorflow": importlib.util.find_spec("tensorflow") is not None,
    "logged": logging,
    "map_shapes": sorted({str(s) for s in shapes.values()}),
    "scores": [str(s) for s in scores],
    "tools": [str(s) for s in tools],
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend, extras",
    [("jax", "jax,viz,callbacks"), ("torch", "torch,viz")],
)
def test_jax_and_torch_users_install_no_tensorflow(dist, backend, extras, tmp_path):
    # The wheel with the extras a JAX or PyTorch user picks, installed by
    # pip into a new environment. The versions are pinned to this
    # environment's (the same files, from pip's cache; PyTorch's CPU build).
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        "".join(
            f"{d.metadata['Name']}=={d.version}\n"
            for d in importlib.metadata.distributions()
            if d.metadata["Name"] not in (None, "keras-aprelu", "keras_aprelu")
        )
    )
    python = _fresh_venv(tmp_path / "venv")
    install = _pip(python, "install", "--quiet", "-c", constraints, f"{dist}[{extras}]")
    assert install.returncode == 0, install.stderr[-3000:]
    listed = _pip(python, "list", "--format=json")
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert backend in names and "keras-aprelu" in names
    assert not {n for n in names if n.startswith("tensorflow")}, sorted(names)
    assert ("tensorboard" in names) == ("callbacks" in extras)

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND=backend, MPLBACKEND="Agg")
    report = run_for_json(
        [python, "-c", _USER_SESSION, str(work)], cwd=work, env=env, timeout=600
    )
    assert report == {
        "backend": backend,
        "tensorflow": False,
        "logged": "callbacks" in extras,
        "map_shapes": ["(4, 8, 8)"],
        "scores": ["(4,)", "(4,)"],
        "tools": ["(4, 6, 6, 4)", "(4, 3, 3, 1)", "(4, 4)", "(1, 8, 8, 1)"],
    }
    for figure in ("maps.png", "cli.png"):
        assert (work / figure).stat().st_size > 0
    if "callbacks" in extras:
        assert any((work / "logs").rglob("events.out.tfevents.*"))
    else:
        # Without the extra, the callbacks say which one to install.
        missing = subprocess.run(
            [
                python,
                "-c",
                "from keras_aprelu import callbacks; "
                "callbacks.AttributionMaps([[0.0]], 'logs')",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        assert 'pip install "keras-aprelu[callbacks]"' in missing.stderr


@pytest.mark.slow
def test_the_built_wheel_installs_and_runs_outside_the_repository(dist, tmp_path):
    """`make dist`'s wheel, installed into a fresh virtual environment with
    no access to the repository: the layers, viz and the package data."""
    version = keras_aprelu.__version__

    # A fresh environment; its dependencies (Keras, TensorFlow, ...) come
    # from this one through a path entry, which does not run this one's
    # .pth files, so the editable install of the repository stays out.
    python = _fresh_venv(tmp_path / "venv")
    fresh = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")
    (pathlib.Path(fresh) / "dependencies.pth").write_text(ours + "\n")
    install = _pip(python, "install", "--quiet", "--no-deps", "--no-index", dist)
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
