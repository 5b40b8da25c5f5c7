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

    assert callbacks.__all__ == ["ActivationMonitor", "AttributionMaps"]
    # The map methods the callbacks accept are viz functions that exist.
    assert all(callable(getattr(viz, name)) for name in viz._MAP_METHODS)
    assert keras_aprelu.__version__ == "0.1.0"


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
