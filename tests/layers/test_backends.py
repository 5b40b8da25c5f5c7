"""The layers under JAX and PyTorch, seen from the TensorFlow run.

The backend is fixed when Keras is imported, so each check starts Python
with `KERAS_BACKEND` set. (`make test` also runs the whole layer suite
under each backend.)
"""

import os
import pathlib
import sys
import textwrap

import numpy as np
import pytest

from tests.backend_testing import run_for_json

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
BACKENDS = ("tensorflow", "jax", "torch")


def run(backend, *code, env=None):
    """Runs the pieces of `code` under `backend`; returns what the last line
    it printed holds, read as JSON."""
    environ = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    environ.update(env or {})
    return run_for_json(
        [sys.executable, "-c", "\n".join(textwrap.dedent(c) for c in code)],
        cwd=ROOT,
        env=environ,
        timeout=300,
    )


# A Python without TensorFlow: `import tensorflow` raises ImportError and
# importlib.util.find_spec answers None, as when it is not installed. (An
# import hook that raises in find_spec would also trip PyTorch, which only
# asks whether TensorFlow is there.)
NO_TENSORFLOW = """
import sys

sys.modules["tensorflow"] = None


def tensorflow_loaded():
    return any(
        (name == "tensorflow" or name.startswith("tensorflow.")) and module is not None
        for name, module in list(sys.modules.items())
    )
"""

SMALL_MODEL = """
import keras
import keras_aprelu

def small_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras_aprelu.APReLU()(x)
    x = keras_aprelu.PReLU()(x)
    x = keras_aprelu.RReLU(seed=1)(x)
    x = keras_aprelu.Maxout(4)(x)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_layers_viz_and_callbacks_need_no_tensorflow(backend, tmp_path):
    report = run(
        backend,
        NO_TENSORFLOW,
        SMALL_MODEL,
        f"""
        import json
        import numpy as np

        from keras_aprelu import callbacks
        from keras_aprelu import viz

        model = small_model(0)
        model.compile(optimizer="sgd", loss="mse")
        x = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
        logs = {str(tmp_path)!r}
        watch = [
            callbacks.ActivationMonitor(x[:4], log_dir=logs),
            callbacks.AttributionMaps(x[:2], logs, methods=("saliency", "hires_cam")),
        ]
        loss = model.fit(
            x, np.zeros((8, 3)), epochs=2, verbose=0, callbacks=watch
        ).history["loss"]
        from keras_aprelu import activations
        y = activations.prelu(np.array([-1.0, 2.0], "float32"), 0.5)
        maps = {{
            "saliency": viz.saliency(model, x[:2], 1).tolist(),
            "grad_cam": viz.grad_cam(model, x[:2], 1).tolist(),
        }}
        print(json.dumps({{
            "loss": loss,
            "prelu": keras.ops.convert_to_numpy(y).tolist(),
            "tensorflow": tensorflow_loaded(),
            "maps": maps,
        }}))
        """,
    )
    assert not report["tensorflow"]
    assert np.all(np.isfinite(report["loss"]))
    assert report["prelu"] == [-0.5, 2.0]
    for name, values in report["maps"].items():
        maps = np.array(values)
        assert maps.shape == (2, 6, 6), name
        # normalize=True: each map's largest magnitude is 1.
        np.testing.assert_allclose(np.abs(maps).max(axis=(1, 2)), 1, rtol=1e-6)
    # The callbacks wrote TensorBoard events (read here, with TensorFlow's
    # reader, in this process).
    from tensorboard.backend.event_processing import event_accumulator

    reader = event_accumulator.EventAccumulator(str(tmp_path))
    reader.Reload()
    tags = set(reader.Tags()["tensors"])
    assert {"saliency", "hires_cam"} <= tags
    assert any(tag.startswith("dead/") for tag in tags)


def test_keras_files_cross_backends_and_old_files_load(tmp_path):
    # Each backend saves a model; each backend then loads every file, with
    # no custom_objects, and the 0.1.0 release's file (saved on TensorFlow).
    x = np.random.default_rng(0).normal(size=(5, 6, 6, 2)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    saved = {}
    for backend in BACKENDS:
        saved[backend] = np.array(
            run(
                backend,
                SMALL_MODEL,
                f"""
                import json
                import numpy as np

                model = small_model({BACKENDS.index(backend)})
                model.save({str(tmp_path / backend)!r} + ".keras")
                x = np.load({str(tmp_path / "x.npy")!r})
                print(json.dumps(model.predict(x, verbose=0).tolist()))
                """,
            )
        )
    release = np.load(DATA / "release_0_1_0.npz")
    for backend in BACKENDS:
        loaded = run(
            backend,
            f"""
            import json
            import keras
            import numpy as np
            import keras_aprelu  # registers the layers

            x = np.load({str(tmp_path / "x.npy")!r})
            out = {{}}
            for name in {list(BACKENDS)!r}:
                path = {str(tmp_path)!r} + "/" + name + ".keras"
                model = keras.saving.load_model(path)
                out[name] = model.predict(x, verbose=0).tolist()
            release = np.load({str(DATA / "release_0_1_0.npz")!r})
            model = keras.saving.load_model({str(DATA / "release_0_1_0.keras")!r})
            out["release"] = model.predict(release["x"], verbose=0).tolist()
            out["weights"] = sorted(w.path for w in model.weights)
            print(json.dumps(out))
            """,
        )
        for name in BACKENDS:
            np.testing.assert_allclose(
                loaded[name],
                saved[name],
                rtol=1e-5,
                atol=1e-5,
                err_msg=f"saved on {name}, loaded on {backend}",
            )
        np.testing.assert_allclose(
            loaded["release"], release["y"], rtol=1e-5, atol=1e-5, err_msg=backend
        )
        assert "aprelu/batch_norm_2/moving_variance" in loaded["weights"]
        assert "aprelu/dense_1/kernel" in loaded["weights"]


def test_fit_under_jax_data_parallel_matches_one_device():
    report = run(
        "jax",
        SMALL_MODEL,
        """
        import json
        import jax
        import numpy as np

        rng = np.random.default_rng(0)
        x = rng.normal(size=(16, 6, 6, 2)).astype("float32")
        y = rng.normal(size=(16, 3)).astype("float32")

        def losses(distribution):
            keras.distribution.set_distribution(distribution)
            model = small_model(0)
            model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
            history = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
            return history.history["loss"]

        one = losses(None)
        two = losses(keras.distribution.DataParallel(devices=jax.devices()))
        print(json.dumps({"devices": len(jax.devices()), "one": one, "two": two}))
        """,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert report["devices"] == 2
    assert report["one"][-1] < report["one"][0]  # it trains
    np.testing.assert_allclose(report["two"], report["one"], rtol=1e-5)
