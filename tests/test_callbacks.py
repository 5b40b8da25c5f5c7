"""keras_aprelu.callbacks: what they log is what viz computes, read back
with TensorBoard's own event reader, and they never change training."""

import io
import warnings

import keras
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util.tensor_util import make_ndarray

import keras_aprelu
from keras_aprelu import callbacks
from keras_aprelu import viz
from keras_aprelu.viz import _backend
from keras_aprelu.viz import plotting
from tests.backend_testing import tensorflow_only


def functional(dropout=False):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.ReLU(name="act1")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv2")(x)
    x = keras_aprelu.APReLU(name="act2")(x)
    x = keras_aprelu.PReLU(name="act3")(x)
    x = keras.layers.Flatten()(x)
    if dropout:
        x = keras.layers.Dropout(0.5)(x)
        x = keras_aprelu.RReLU(seed=None)(x)  # random in training, unseeded
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs)


def sequential():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras_aprelu.APReLU(name="act1"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def nested():
    inner = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.ReLU()],
        name="inner",
    )
    inputs = keras.Input((8, 8, 1))
    x = keras_aprelu.APReLU(name="act2")(inner(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 3)
        self.act = keras_aprelu.APReLU(name="act1")
        self.flatten = keras.layers.Flatten()
        self.head = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.head(self.flatten(self.act(self.conv(x))))


MODELS = {
    "functional": functional,
    "sequential": sequential,
    "nested": nested,
    "subclassed": Subclassed,
}


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, 3, n)


def compiled(model, learning_rate=0.05, **kwargs):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        **kwargs,
    )
    return model


class Record(keras.callbacks.Callback):
    """What viz computes on the model at the end of each epoch."""

    def __init__(self, inputs, images):
        super().__init__()
        self.inputs, self.images = inputs, images
        self.dead, self.slopes, self.saliency, self.prelu = [], [], [], []

    def on_epoch_end(self, epoch, logs=None):
        self.dead.append(viz.dead_units(self.model, self.inputs))
        self.slopes.append(viz.aprelu_slopes(self.model, self.inputs))
        self.saliency.append(viz.saliency(self.model, self.images))
        layer = self.model.get_layer("act3")
        self.prelu.append(np.asarray(_backend.to_numpy(layer.alpha)).ravel())


def events(folder):
    reader = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.TENSORS: 0}
    )
    reader.Reload()
    return reader


def test_logged_values_are_what_viz_computes_at_each_epoch(tmp_path):
    x, y = data()
    model = compiled(functional())
    monitor = callbacks.ActivationMonitor(x[:16], log_dir=tmp_path)
    maps = callbacks.AttributionMaps(x[:3], tmp_path, methods=("saliency",))
    record = Record(x[:16], x[:3])
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[monitor, maps, record])
    reader = events(tmp_path)
    for path in ("act1", "act2", "act3"):
        # In the epoch's logs (History) and in the event file, per epoch.
        logged = history.history[f"dead/{path}"]
        assert logged == [dead[path] for dead in record.dead]
        scalars = reader.Tensors(f"dead/{path}")
        assert [s.step for s in scalars] == [0, 1, 2]
        values = [float(make_ndarray(s.tensor_proto)) for s in scalars]
        np.testing.assert_allclose(values, logged, rtol=1e-6)
    # Histograms: (k, 3) buckets [left, right, count] of each layer's slopes.
    for tag, expected in (
        ("slopes/act2", [s["act2"] for s in record.slopes]),
        ("slopes/act3", record.prelu),
    ):
        histograms = reader.Tensors(tag)
        assert [h.step for h in histograms] == [0, 1, 2]
        for histogram, values in zip(histograms, expected, strict=True):
            buckets = make_ndarray(histogram.tensor_proto)
            assert buckets[:, 2].sum() == values.size
            np.testing.assert_allclose(buckets[0, 0], values.min(), rtol=1e-6)
            np.testing.assert_allclose(buckets[-1, 1], values.max(), rtol=1e-6)
    # The images: each input with its saliency map overlaid, per epoch.
    images = reader.Tensors("saliency")
    assert [i.step for i in images] == [0, 1, 2]
    for image, saliency in zip(images, record.saliency, strict=True):
        # A summary image tensor is [width, height, png, png, ...].
        encoded = make_ndarray(image.tensor_proto)[2:]
        assert len(encoded) == 3
        expected = plotting.overlay_images(x[:3], saliency)
        # Upscaled 16x (to 128 pixels), nearest neighbour: each input pixel
        # is a 16 x 16 block; the header and the description say the sizes.
        assert make_ndarray(image.tensor_proto)[:2].tolist() == [b"128", b"128"]
        for png, want in zip(encoded, expected, strict=True):
            got = np.asarray(Image.open(io.BytesIO(png)), "float32") / 255
            assert got.shape == (128, 128, 3)
            np.testing.assert_array_equal(got[::16, ::16], got[15::16, 15::16])
            np.testing.assert_allclose(got[::16, ::16], want, atol=1 / 255 + 1e-6)
    description = reader.summary_metadata["saliency"].summary_description
    assert description == "8x8 inputs, shown 16x larger (nearest neighbour)"


def test_overlay_images_blend_the_input_and_the_colormap():
    import matplotlib

    images = np.zeros((1, 2, 2, 1), "float32")
    images[0, 0, 0, 0] = 1.0
    maps = np.array([[[0.0, 1.0], [0.5, 0.0]]], "float32")
    out = plotting.overlay_images(images, maps, alpha=0.25)
    jet = matplotlib.colormaps["jet"]
    for (i, j), grey in {(0, 0): 1.0, (0, 1): 0.0, (1, 0): 0.0}.items():
        want = 0.75 * grey + 0.25 * np.asarray(jet(float(maps[0, i, j]))[:3])
        np.testing.assert_allclose(out[0, i, j], want, rtol=1e-6)
    with pytest.raises(ValueError, match=r"one \(H, W\) map per image"):
        plotting.overlay_images(images, maps[:, :1])


def test_callbacks_never_change_training(tmp_path):
    # Dropout and an unseeded RReLU are random in training. Keras 3 layers
    # own their seed generators, so once the model is built the global
    # random state cannot reach training (reseeding in a callback did not
    # change these weights); what can is a callback that runs the model in
    # training mode (batch norm statistics, seed generators) or writes its
    # variables: one calling model(x, training=True) changes them here.
    x, y = data(48)

    def train(with_callbacks):
        keras.utils.set_random_seed(7)
        model = compiled(functional(dropout=True))
        extra = []
        if with_callbacks:
            extra = [
                callbacks.ActivationMonitor(
                    x[:16], log_dir=tmp_path / "m", on_dead="ignore"
                ),
                callbacks.AttributionMaps(
                    x[:2], tmp_path / "a", methods=("saliency", "grad_cam")
                ),
            ]
        model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, shuffle=True, callbacks=extra
        )
        return [np.asarray(_backend.to_numpy(w)) for w in model.weights]

    plain, watched = train(False), train(True)
    for a, b in zip(plain, watched, strict=True):
        np.testing.assert_array_equal(a, b)


@tensorflow_only("counts traces with tf.function's tracing count")
def test_compiled_functions_are_reused_from_epoch_to_epoch(tmp_path):
    x, y = data()
    model = compiled(functional())
    counts = []

    class Count(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            counts.append(
                {
                    key: fn.experimental_get_tracing_count()
                    for key, fn in _backend.functions_of(model).items()
                }
            )

    monitor = callbacks.ActivationMonitor(x[:16], log_dir=tmp_path)
    maps = callbacks.AttributionMaps(x[:2], tmp_path, methods=("grad_cam",))
    model.fit(x, y, epochs=3, verbose=0, callbacks=[monitor, maps, Count()])
    assert counts[0] and counts[0] == counts[1] == counts[2]
    assert all(count == 1 for count in counts[0].values())


@pytest.mark.parametrize(
    "kind, validation",
    [
        ("functional", True),
        ("sequential", False),
        ("nested", True),
        ("subclassed", False),
    ],
)
def test_every_model_kind_with_and_without_validation(kind, validation, tmp_path):
    x, y = data()
    # Compiled train steps on TensorFlow and JAX. On PyTorch, Keras's
    # torch.compile step warns from inside PyTorch 2.13 (".grad of a
    # non-leaf Tensor") with or without callbacks, so Keras's default eager
    # step runs there.
    jit = keras.config.backend() != "torch"
    model = compiled(MODELS[kind](), jit_compile=jit)
    monitor = callbacks.ActivationMonitor(x[:8], log_dir=tmp_path, every=2)
    maps = callbacks.AttributionMaps(x[:2], tmp_path, methods=("saliency",))
    history = model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        validation_data=(x[:8], y[:8]) if validation else None,
        callbacks=[monitor, maps],
    )
    dead = viz.dead_units(model, x[:8])
    for path, value in dead.items():
        # every=2: only the second epoch is computed, into that epoch's logs.
        assert history.history[f"dead/{path}"] == [value]
    assert ("val_loss" in history.history) == validation
    reader = events(tmp_path)
    assert [t.step for t in reader.Tensors("saliency")] == [0, 1]
    tag = f"slopes/{next(iter(viz.aprelu_slopes(model, x[:1])))}"
    assert [t.step for t in reader.Tensors(tag)] == [1]


@tensorflow_only("MirroredStrategy is TensorFlow's")
def test_under_mirrored_strategy(strategy, tmp_path):
    x, y = data()
    with strategy.scope():
        model = compiled(functional())
    monitor = callbacks.ActivationMonitor(x[:16], log_dir=tmp_path)
    maps = callbacks.AttributionMaps(x[:2], tmp_path, methods=("hires_cam",))
    history = model.fit(
        x, y, batch_size=8, epochs=2, verbose=0, callbacks=[monitor, maps]
    )
    assert history.history["dead/act1"][-1] == viz.dead_units(model, x[:16])["act1"]
    assert [t.step for t in events(tmp_path).Tensors("hires_cam")] == [0, 1]


def dead_model():
    """Channel 0 of act1 can never fire (bias -100 on inputs in [0, 1]);
    learning rate 0 keeps it so: act1 is exactly 25 % dead."""
    model = compiled(functional(), learning_rate=0.0)
    conv = model.get_layer("conv1")
    kernel, bias = (np.asarray(_backend.to_numpy(w)) for w in conv.weights)
    kernel[..., 0] = 0.0
    bias[0] = -100.0
    conv.set_weights([kernel, bias])
    return model


@pytest.mark.parametrize("on_dead", ["warn", "stop", "ignore"])
def test_on_dead(on_dead):
    x, y = data()
    model = dead_model()
    monitor = callbacks.ActivationMonitor(x[:16], dead_threshold=0.2, on_dead=on_dead)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=3, verbose=0, callbacks=[monitor])
    messages = [str(w.message) for w in caught if "dead after epoch" in str(w.message)]
    epochs = len(history.history["loss"])
    assert history.history["dead/act1"] == [0.25] * epochs
    if on_dead == "ignore":
        assert messages == [] and epochs == 3
    else:
        # Once, when act1 first exceeds the threshold, not at every epoch.
        assert messages == [
            "25% of the units of layer 'act1' are dead after epoch 1 "
            "(dead_threshold=0.2)" + ("; training stops." if on_dead == "stop" else ".")
        ]
        assert epochs == (1 if on_dead == "stop" else 3)


def gap_model(normalization):
    """One APReLU layer with the given sub-network and learning rate 0;
    with batch norms, moving means 3 units off the batch's."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras_aprelu.APReLU(normalization=normalization, name="act")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    model = compiled(keras.Model(inputs, outputs), learning_rate=0.0)
    for norm in model.get_layer("act").normalization_layers():
        if hasattr(norm, "moving_mean"):
            norm.moving_mean.assign(np.full(norm.moving_mean.shape, 3.0))
    return model


@pytest.mark.parametrize("normalization", ["none", "batch"])
def test_slope_gap_is_logged_and_warned_once(normalization, tmp_path):
    x, y = data()
    model = gap_model(normalization)
    layer = model.get_layer("act")
    monitor = callbacks.ActivationMonitor(x[:16], log_dir=tmp_path, batch_size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
    gaps = history.history["slope_gap/act"]
    # By hand: the layer's own slopes, on the layer's inputs, in each mode.
    features = keras.Model(model.inputs, layer.input).predict(x[:16], verbose=0)
    infer = _backend.to_numpy(layer.slopes(features))
    saved = [_backend.to_numpy(v) for v in layer.non_trainable_variables]
    train = np.concatenate(
        [
            _backend.to_numpy(layer.slopes(features[i : i + 8], training=True))
            for i in (0, 8)
        ]
    )
    for variable, value in zip(layer.non_trainable_variables, saved, strict=True):
        variable.assign(value)
    expected = float(np.mean(np.abs(train - infer)))
    # fit moves the moving statistics even at learning rate 0: the last
    # epoch's gap is that of the final model.
    np.testing.assert_allclose(gaps[-1], expected, rtol=1e-4, atol=1e-6)
    scalars = events(tmp_path).Tensors("slope_gap/act")
    assert [s.step for s in scalars] == [0, 1]
    messages = [
        str(w.message)
        for w in caught
        if "training mode and inference" in str(w.message)
    ]
    if normalization == "none":
        np.testing.assert_allclose(gaps, [0.0, 0.0], atol=1e-6)
        assert messages == []
    else:
        assert expected > 0.05
        assert len(messages) == 1  # once, not at every epoch
        assert messages[0].startswith("The slopes of APReLU layer 'act' differ by")
        assert "keras_aprelu.recalibrate_batch_norm" in messages[0]
    # The monitor left the moving statistics as they were.
    for variable, value in zip(layer.non_trainable_variables, saved, strict=True):
        np.testing.assert_array_equal(_backend.to_numpy(variable), value)


def test_recalibrate_callback_is_the_function_at_the_end_of_fit():
    x, y = data()
    keras.utils.set_random_seed(0)
    with_callback = compiled(gap_model("batch"))
    keras.utils.set_random_seed(0)
    by_hand = compiled(gap_model("batch"))
    recalibrate = callbacks.RecalibrateBatchNorm(x, batch_size=16)
    with_callback.fit(x, y, epochs=1, verbose=0, shuffle=False, callbacks=[recalibrate])
    by_hand.fit(x, y, epochs=1, verbose=0, shuffle=False)
    keras_aprelu.recalibrate_batch_norm(by_hand, x, batch_size=16)
    for a, b in zip(with_callback.variables, by_hand.variables, strict=True):
        np.testing.assert_allclose(
            _backend.to_numpy(a), _backend.to_numpy(b), rtol=1e-6, atol=1e-7
        )
    # It changed the statistics that fit left (momentum 0.9 from 3.0).
    bn = with_callback.get_layer("act").normalization_layers()[0]
    assert np.abs(_backend.to_numpy(bn.moving_mean) - 3.0).min() > 0.1


def test_recalibrate_callback_leaves_a_model_without_batch_norm_alone():
    x, y = data()
    keras.utils.set_random_seed(0)
    plain = compiled(functional())
    keras.utils.set_random_seed(0)
    watched = compiled(functional())
    plain.fit(x, y, epochs=1, verbose=0, shuffle=False)
    watched.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[callbacks.RecalibrateBatchNorm(x)],
    )
    for a, b in zip(plain.variables, watched.variables, strict=True):
        np.testing.assert_array_equal(_backend.to_numpy(a), _backend.to_numpy(b))


def test_method_kwargs_go_to_the_methods_that_take_them(tmp_path):
    x, y = data()
    model = compiled(functional())
    maps = callbacks.AttributionMaps(
        x[:2], tmp_path, methods=("saliency", "grad_cam"), layer="act1"
    )
    # saliency takes `layer` too (to attribute to a layer's output), which
    # would draw no image: here it is the CAMs' alone.
    assert maps._kwargs == {"saliency": {}, "grad_cam": {"layer": "act1"}}
    with pytest.raises(ValueError, match=r"takes the keyword argument 'layer'"):
        callbacks.AttributionMaps(x[:2], tmp_path, methods=("saliency",), layer="act1")
    record = []

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            record.append(viz.grad_cam(self.model, x[:2], layer="act1"))

    model.fit(x, y, epochs=1, verbose=0, callbacks=[maps, Keep()])
    png = make_ndarray(events(tmp_path).Tensors("grad_cam")[0].tensor_proto)[2]
    got = np.asarray(Image.open(io.BytesIO(png)), "float32") / 255
    want = plotting.overlay_images(x[:1], record[0][:1])[0]
    # Logged 16 times larger (8 -> 128 pixels), nearest neighbour.
    np.testing.assert_allclose(got[::16, ::16], want, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: callbacks.ActivationMonitor(np.zeros((0, 8, 8, 1))),
            r"`inputs` must hold at least one sample.* Received: inputs with "
            r"shape \(0, 8, 8, 1\)",
        ),
        (
            lambda: callbacks.ActivationMonitor([]),
            r"`inputs` must not be empty\. Received: inputs=\[\]",
        ),
        (
            lambda: callbacks.ActivationMonitor(np.ones((2, 8, 8, 1)), every=0),
            r"Received: every=0",
        ),
        (
            lambda: callbacks.ActivationMonitor(
                np.ones((2, 8, 8, 1)), dead_threshold=1.5
            ),
            r"`dead_threshold` must be a number in \[0, 1\]\. "
            r"Received: dead_threshold=1\.5",
        ),
        (
            lambda: callbacks.ActivationMonitor(
                np.ones((2, 8, 8, 1)), dead_threshold=float("nan")
            ),
            r"Received: dead_threshold=nan",
        ),
        (
            lambda: callbacks.ActivationMonitor(
                np.ones((2, 8, 8, 1)), dead_threshold=True
            ),
            r"Received: dead_threshold=True",
        ),
        (
            lambda: callbacks.ActivationMonitor(np.ones((2, 8, 8, 1)), on_dead="panic"),
            r"Received: on_dead='panic'",
        ),
        (
            lambda: callbacks.ActivationMonitor(np.ones((2, 8, 8, 1)), gap_threshold=2),
            r"`gap_threshold` must be a number in \[0, 1\]\. Received: gap_threshold=2",
        ),
        (
            lambda: callbacks.RecalibrateBatchNorm(np.ones((2, 8, 8, 1)), steps=0),
            r"`steps` must be a positive int\. Received: steps=0",
        ),
        (
            lambda: callbacks.AttributionMaps(
                np.ones((2, 8, 8, 1)), "logs", methods=("saliency", "gradcam")
            ),
            r"`methods` must name keras_aprelu.viz map methods: saliency, .*"
            r"Received: methods=\('saliency', 'gradcam'\)",
        ),
        (
            lambda: callbacks.AttributionMaps(np.ones((2, 8, 8, 1)), "logs", every=-1),
            r"Received: every=-1",
        ),
        (
            lambda: callbacks.AttributionMaps(
                np.ones((2, 8, 8, 1)), "logs", methods=("saliency",), layer="act1"
            ),
            r"No method in `methods` takes the keyword argument 'layer'\. "
            r"Received: methods=\('saliency',\), layer='act1'",
        ),
        (
            lambda: callbacks.AttributionMaps(np.ones((2, 8, 8, 1)), None),
            r"Received: log_dir=None",
        ),
    ],
)
def test_bad_arguments_fail_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_called_outside_fit_the_callbacks_still_log(tmp_path):
    # After fit closed the writer, a direct call (a user logging one more
    # epoch by hand) opens it again instead of failing or skipping.
    x, y = data()
    model = compiled(functional())
    monitor = callbacks.ActivationMonitor(x[:8], log_dir=tmp_path)
    maps = callbacks.AttributionMaps(x[:2], tmp_path, methods=("saliency",))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor, maps])
    for callback in (monitor, maps):
        callback.on_epoch_end(4, {})
        callback.on_train_end()
    reader = events(tmp_path)
    assert [t.step for t in reader.Tensors("saliency")] == [0, 4]
    assert [t.step for t in reader.Tensors("dead/act1")] == [0, 4]


class _CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda tmp: callbacks.ActivationMonitor(np.zeros((4, 32, 32, 3))),
            r"`inputs` must have shape \(batch, 8, 8, 1\).*"
            r"Received: inputs.shape=\(4, 32, 32, 3\)",
        ),
        (
            lambda tmp: callbacks.AttributionMaps(
                np.zeros((2, 8, 8, 1)), tmp, methods=("grad_cam",), layer="nope"
            ),
            r"`layer` names no layer .*Received: layer='nope'",
        ),
    ],
    ids=["inputs of another shape", "no such layer"],
)
def test_errors_come_before_the_first_training_step(make, message, tmp_path):
    # They came at the end of the first logged epoch: with every=2, after
    # two epochs of steps, and fit died without its History.
    x, y = data()
    model = compiled(functional())
    before = [np.array(w) for w in model.get_weights()]
    counter = _CountSteps()
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[counter, make(tmp_path)])
    assert counter.steps == 0
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_log_dir_that_is_a_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "events.txt"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match=r"`log_dir` must be a folder.*events.txt"):
        callbacks.ActivationMonitor(np.zeros((2, 8, 8, 1)), log_dir=path)


def test_attribution_maps_of_a_vit_on_its_token_grid(tmp_path):
    pytest.importorskip("keras_hub")
    from tests.viz import models

    keras.utils.set_random_seed(0)
    model, _ = models.vit_classifier(num_layers=2, head="head")
    # The same weights on every backend (Keras's initializers draw
    # differently on each), whose HiResCAM of class 2 is not all zero.
    models.randomize(model, seed=1)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    maps = callbacks.AttributionMaps(
        x[:1], tmp_path, methods=("hires_cam", "gradient_rollout"), target=2
    )
    record = {}

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            record["hires_cam"] = viz.hires_cam(self.model, x[:1], 2)
            record["gradient_rollout"] = viz.gradient_rollout(self.model, x[:1], 2)

    model.fit(x, np.arange(4) % 3, epochs=1, verbose=0, callbacks=[maps, Keep()])
    for tag, expected in record.items():
        assert np.ptp(expected) > 0, tag  # a map with something to draw
        png = make_ndarray(events(tmp_path).Tensors(tag)[0].tensor_proto)[2]
        got = np.asarray(Image.open(io.BytesIO(png)), "float32") / 255
        want = plotting.overlay_images(x[:1], expected)[0]
        scale = got.shape[0] // 16
        np.testing.assert_allclose(got[::scale, ::scale], want, atol=1 / 255 + 1e-6)


def test_attribution_maps_log_lrp_and_deeplift(tmp_path):
    x, y = data()
    model = compiled(functional())
    maps = callbacks.AttributionMaps(
        x[:2], tmp_path, methods=("lrp", "deeplift"), composite="epsilon"
    )
    assert maps._kwargs == {"lrp": {"composite": "epsilon"}, "deeplift": {}}
    record = []

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            record.append(viz.lrp(self.model, x[:2], composite="epsilon"))

    model.fit(x, y, epochs=1, verbose=0, callbacks=[maps, Keep()])
    assert np.abs(record[0]).max() > 0
    reader = events(tmp_path)
    png = make_ndarray(reader.Tensors("lrp")[0].tensor_proto)[2]
    got = np.asarray(Image.open(io.BytesIO(png)), "float32") / 255
    want = plotting.overlay_images(x[:1], record[0][:1])[0]
    np.testing.assert_allclose(got[::16, ::16], want, atol=1 / 255)
    assert [i.step for i in reader.Tensors("deeplift")] == [0]
