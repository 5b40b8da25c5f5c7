"""Keras callbacks that watch a model while it trains, in TensorBoard.

`ActivationMonitor` logs the dead fraction of every activation layer and
the slopes of every APReLU and PReLU layer; `AttributionMaps` logs the
maps of any `keras_aprelu.viz` method, overlaid on fixed inputs. Both call
the public `keras_aprelu.viz` functions, so a logged value is exactly what
`viz.dead_units`, `viz.aprelu_slopes` or `viz.grad_cam` return for the
model at that epoch. Like viz, they run on every Keras backend, and they
write TensorBoard's event files without TensorFlow.

They never change training: they run the model in inference only, draw no
random numbers, and leave its weights alone, so `fit` gives bit-identical
weights with and without them.
"""

import inspect
import os
import warnings

import keras
import numpy as np

from keras_aprelu import _batch_norm
from keras_aprelu import viz
from keras_aprelu.layers import APReLU
from keras_aprelu.layers import PReLU
from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _layers
from keras_aprelu.viz import plotting

__all__ = ["ActivationMonitor", "AttributionMaps", "RecalibrateBatchNorm"]

# What `on_dead` may be: warn, also stop training, or do nothing.
_ON_DEAD = ("warn", "stop", "ignore")


def _check_inputs(inputs):
    """A fixed batch: an array, a list or dict of them (several inputs), or
    a tf.data.Dataset. Emptiness is caught here, the rest by viz."""
    if inputs is None:
        raise ValueError("`inputs` must be a batch of inputs. Received: inputs=None")
    if isinstance(inputs, dict):
        arrays = list(inputs.values())
    elif isinstance(inputs, (list, tuple)):
        arrays = list(inputs)
    else:
        arrays = [inputs]
    if not arrays:
        raise ValueError(f"`inputs` must not be empty. Received: inputs={inputs!r}")
    for array in arrays:
        shape = getattr(array, "shape", None)
        if shape is not None and (len(shape) == 0 or shape[0] == 0):
            raise ValueError(
                "`inputs` must hold at least one sample, batch first. "
                f"Received: inputs with shape {tuple(shape)}"
            )
    return inputs


def _require(package):
    """Raises, at construction, the ImportError that names the extra."""
    try:
        __import__(package)
    except ImportError as error:
        raise ImportError(
            f"keras_aprelu.callbacks needs {package} for this. Install it "
            'with: pip install "keras-aprelu[callbacks]"'
        ) from error


class _EpochWriter:
    """The TensorBoard writer of one callback, opened when training starts.

    It writes event files with the `tensorboard` package's own
    `EventFileWriter` and summary protos, which need no TensorFlow, so the
    callbacks log on every Keras backend. The summaries are the tensor
    summaries that `tf.summary.scalar`, `histogram` and `image` write, with
    the same plugin metadata, so TensorBoard shows them the same way.
    """

    HISTOGRAM_BUCKETS = 30  # tf.summary.histogram's default
    MIN_IMAGE_SIDE = 128  # pixels on the short side of a logged image

    def __init__(self, log_dir):
        if log_dir is not None:
            _require("tensorboard")
            if os.path.exists(log_dir) and not os.path.isdir(log_dir):
                raise ValueError(
                    "`log_dir` must be a folder (made if missing), not a file. "
                    f"Received: log_dir={str(log_dir)!r}"
                )
        self.log_dir = log_dir
        self.writer = None

    def open(self):
        if self.log_dir is not None and self.writer is None:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self.writer = EventFileWriter(str(self.log_dir))

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _write(self, tag, tensor, plugin, step, dtype=None, description=""):
        import time

        from tensorboard.compat.proto import event_pb2
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.util import tensor_util

        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
            summary_description=description,
        )
        value = summary_pb2.Summary.Value(
            tag=tag,
            metadata=metadata,
            tensor=tensor_util.make_tensor_proto(tensor, dtype=dtype),
        )
        self.writer.add_event(
            event_pb2.Event(
                wall_time=time.time(),
                step=int(step),
                summary=summary_pb2.Summary(value=[value]),
            )
        )

    def scalar(self, tag, value, step):
        self._write(tag, np.float32(value), "scalars", step)

    def histogram(self, tag, values, step):
        values = np.asarray(values, dtype="float64").ravel()
        if values.size == 0:
            buckets = np.zeros((0, 3))
        else:
            low, high = values.min(), values.max()
            if low == high:  # one value: a bucket of width 1 around it
                low, high = low - 0.5, high + 0.5
            counts, edges = np.histogram(
                values, bins=self.HISTOGRAM_BUCKETS, range=(low, high)
            )
            buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
        self._write(tag, buckets, "histograms", step)

    def images(self, tag, images, step):
        """`images`: (n, height, width, channels) floats in [0, 1], written
        upscaled by a whole factor (nearest neighbour) to at least
        `MIN_IMAGE_SIDE` pixels on the short side, so that a 28-pixel digit
        is not a speck in TensorBoard; the description keeps the size."""
        import io

        # Pillow comes with matplotlib, which the callbacks need for the
        # overlays; it writes the PNG with the image's own channels.
        from PIL import Image

        images = np.asarray(images, dtype="float32")
        height, width = images.shape[1:3]
        factor = -(-self.MIN_IMAGE_SIDE // min(height, width))
        images = np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)
        encoded = []
        for image in images:
            pixels = np.round(np.clip(image, 0, 1) * 255).astype("uint8")
            if pixels.shape[-1] == 1:
                pixels = pixels[..., 0]
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="png")
            encoded.append(buffer.getvalue())
        strings = [
            str(width * factor).encode(),
            str(height * factor).encode(),
            *encoded,
        ]
        description = (
            f"{height}x{width} inputs, shown {factor}x larger (nearest neighbour)"
        )
        self._write(
            tag,
            np.array(strings, dtype=object),
            "images",
            step,
            description=description,
        )
        self.writer.flush()


class _EveryEpochs(keras.callbacks.Callback):
    """Holds the TensorBoard writer open while training, and calls
    `_log(epoch, logs)` at the end of every `every`-th epoch."""

    def __init__(self, log_dir, every):
        super().__init__()
        self.log_dir = log_dir
        self.every = _args.check_positive_int(every, "every")
        self._writer = _EpochWriter(log_dir)

    def on_train_begin(self, logs=None):
        # Everything that can be checked against the model is checked now,
        # before the first step, not at the end of the first logged epoch.
        self._check(self.model)
        self._writer.open()

    def _check(self, model):
        """Checks the callback's arguments against `model`."""
        _inputs.read(model, self.inputs)

    def on_train_end(self, logs=None):
        self._writer.close()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self._writer.open()  # also when called outside `fit`
            self._log(epoch, logs)


class ActivationMonitor(_EveryEpochs):
    """Logs dying units and APReLU's and PReLU's slopes during training.

    Every `every` epochs, on the fixed `inputs`, it computes:

    - the dead fraction of each activation layer, exactly as
      `keras_aprelu.viz.dead_units` defines it (per channel), and adds it to
      the epoch's `logs` as `dead/<layer path>`, so that `History`,
      `CSVLogger` and the progress bar see it (put those callbacks after
      this one in the list);
    - the slopes of each APReLU layer on `inputs` (as
      `keras_aprelu.viz.aprelu_slopes`) and the weights of each PReLU layer
      (`keras_aprelu.PReLU` and `keras.layers.PReLU`);
    - for each APReLU layer, the gap between its slopes in training mode
      and in inference mode, mean |alpha_train - alpha_infer| over `inputs`
      (training mode normalizing each batch of `batch_size` with its own
      statistics), added to `logs` as `slope_gap/<layer path>`. It is 0
      for the default `normalization="none"` and for `"layer"`. Where it
      is large, the model does not infer as it trains: the first time a
      layer's gap exceeds `gap_threshold`, one warning says so and what
      to do.

    With a `log_dir` it writes the dead fractions and slope gaps to
    TensorBoard as scalars (`dead/<path>`, `slope_gap/<path>`) and the
    slopes as histograms (`slopes/<path>`), at the epoch's index. The
    first time a layer's dead fraction exceeds `dead_threshold`,
    `on_dead` decides: `"warn"` (one warning that names the layer, the
    fraction and the epoch), `"stop"` (the warning, and training stops
    after this epoch), or `"ignore"`.

    Args:
        inputs: A fixed batch the model takes, as in `viz.dead_units`: an
            array, a list or dict of arrays, or a `tf.data.Dataset`.
        log_dir: Folder of the TensorBoard event files. Defaults to `None`:
            only `logs` and warnings.
        every: Compute every `every` epochs. Defaults to `1`.
        dead_threshold: The dead fraction, in [0, 1], above which a layer is
            reported. Defaults to `0.5`.
        on_dead: `"warn"`, `"stop"` or `"ignore"`. Defaults to `"warn"`.
        gap_threshold: The slope gap, in [0, 1], above which an APReLU
            layer is reported. Defaults to `0.05`.
        batch_size: Samples per pass. Defaults to `64`; for the slope gap,
            use the batch size of `fit`.

    Example:

    ```python
    monitor = keras_aprelu.callbacks.ActivationMonitor(x_test[:1000], log_dir="logs")
    history = model.fit(x, y, epochs=5, callbacks=[monitor])
    history.history["dead/act1"]  # the dead fraction of act1 after each epoch
    ```

    Cost: one forward pass over `inputs` every `every` epochs (two with
    APReLU layers), compiled once per model and reused from epoch to epoch;
    where an APReLU sub-network has batch norms, one more, and one eager
    pass for its training-mode slopes.
    """

    def __init__(
        self,
        inputs,
        *,
        log_dir=None,
        every=1,
        dead_threshold=0.5,
        on_dead="warn",
        gap_threshold=0.05,
        batch_size=64,
    ):
        self.inputs = _check_inputs(inputs)
        super().__init__(log_dir, every)
        self.dead_threshold = _args.check_number(dead_threshold, "dead_threshold", 0, 1)
        self.on_dead = _args.check_choice(on_dead, "on_dead", _ON_DEAD)
        self.gap_threshold = _args.check_number(gap_threshold, "gap_threshold", 0, 1)
        self.batch_size = _args.check_positive_int(batch_size, "batch_size")
        self._reported = set()
        self._gap_reported = set()

    def _log(self, epoch, logs):
        dead = viz.dead_units(self.model, self.inputs, batch_size=self.batch_size)
        gaps = self.slope_gaps()
        if logs is not None:
            logs.update({f"dead/{path}": value for path, value in dead.items()})
            logs.update({f"slope_gap/{path}": value for path, value in gaps.items()})
        if self._writer.writer is not None:
            for path, value in dead.items():
                self._writer.scalar(f"dead/{path}", value, epoch)
            for path, value in gaps.items():
                self._writer.scalar(f"slope_gap/{path}", value, epoch)
            for path, values in self.slopes().items():
                self._writer.histogram(f"slopes/{path}", values, epoch)
            self._writer.writer.flush()
        for path, value in dead.items():
            if value > self.dead_threshold and path not in self._reported:
                self._reported.add(path)
                self._report(path, value, epoch)
        for path, value in gaps.items():
            if value > self.gap_threshold and path not in self._gap_reported:
                self._gap_reported.add(path)
                warnings.warn(
                    f"The slopes of APReLU layer {path!r} differ by {value:.3f} "
                    "on average between training mode and inference mode after "
                    f"epoch {epoch + 1} (gap_threshold={self.gap_threshold}): "
                    "predict and evaluate do not compute what fit trained. Use "
                    'APReLU(normalization="none"), the default, or recompute '
                    "the batch-norm statistics after fit with "
                    "keras_aprelu.recalibrate_batch_norm(model, x_train) or the "
                    "RecalibrateBatchNorm callback.",
                    stacklevel=2,
                )

    def slope_gaps(self):
        """The slope gap now: dict from APReLU layer path to the mean of
        |alpha_train - alpha_infer| over `inputs` ({} without APReLU). A
        sub-network without batch norms has the same slopes in both modes,
        so its gap is 0 without a pass over `inputs`."""
        found = [
            (path, layer)
            for path, layer in _layers.walk(self.model)
            if isinstance(layer, APReLU)
        ]
        gaps = {path: 0.0 for path, _ in found}
        if not any(_batch_norm.batch_norms(layer) for _, layer in found):
            return gaps
        infer = viz.aprelu_slopes(self.model, self.inputs, batch_size=self.batch_size)
        train = viz.aprelu_slopes(
            self.model, self.inputs, training=True, batch_size=self.batch_size
        )
        gaps.update(
            {path: float(np.mean(np.abs(train[path] - infer[path]))) for path in infer}
        )
        return gaps

    def slopes(self):
        """The slopes now: dict from layer path to APReLU's slopes on
        `inputs` (batch, C), or a PReLU layer's weights, flattened."""
        walked = list(_layers.walk(self.model))
        result = {}
        if any(isinstance(layer, APReLU) for _, layer in walked):
            result.update(
                viz.aprelu_slopes(self.model, self.inputs, batch_size=self.batch_size)
            )
        for path, layer in walked:
            if isinstance(layer, (PReLU, keras.layers.PReLU)) and layer.built:
                result[path] = np.asarray(_backend.to_numpy(layer.alpha)).ravel()
        return result

    def _report(self, path, value, epoch):
        if self.on_dead == "ignore":
            return
        stop = self.on_dead == "stop"
        warnings.warn(
            f"{value:.0%} of the units of layer {path!r} are dead after epoch "
            f"{epoch + 1} (dead_threshold={self.dead_threshold})"
            + ("; training stops." if stop else "."),
            stacklevel=2,
        )
        if stop:
            self.model.stop_training = True

    def get_config(self):
        return {
            "log_dir": self.log_dir,
            "every": self.every,
            "dead_threshold": self.dead_threshold,
            "on_dead": self.on_dead,
            "gap_threshold": self.gap_threshold,
            "batch_size": self.batch_size,
        }


class RecalibrateBatchNorm(keras.callbacks.Callback):
    """Recomputes every batch norm's statistics when `fit` ends.

    At the end of training it calls `keras_aprelu.recalibrate_batch_norm`
    with `data`, so that the model that `fit` returns infers with moving
    statistics computed exactly with its final weights. Unlike the other
    callbacks here, it changes the model: its batch norms' moving mean and
    variance, nothing else.

    Args:
        data: As in `recalibrate_batch_norm`: arrays, `(x, y)`, a
            `tf.data.Dataset` or an iterable of batches; the training data
            (or a few thousand samples of it) is the usual choice.
        steps: The number of batches to read. Defaults to `None`, all.
        batch_size: The batch size for array data. Defaults to `32`.

    Example:

    ```python
    recalibrate = keras_aprelu.callbacks.RecalibrateBatchNorm(x_train[:5000])
    model.fit(x_train, y_train, epochs=5, callbacks=[recalibrate])
    ```

    Cost: one forward pass over `data`, once, run eagerly.
    """

    def __init__(self, data, steps=None, batch_size=32):
        super().__init__()
        self.data = data
        self.steps = None if steps is None else _args.check_positive_int(steps, "steps")
        self.batch_size = _args.check_positive_int(batch_size, "batch_size")

    def on_train_end(self, logs=None):
        _batch_norm.recalibrate_batch_norm(
            self.model, self.data, steps=self.steps, batch_size=self.batch_size
        )


def _map_methods():
    """name -> function of every keras_aprelu.viz method that returns maps."""
    return {name: getattr(viz, name) for name in viz._MAP_METHODS}


class AttributionMaps(_EveryEpochs):
    """Logs attribution maps of fixed inputs to TensorBoard during training.

    Every `every` epochs, for each method, it computes the maps of `inputs`
    with the public `keras_aprelu.viz` function of that name and writes one
    image per input, the input with its map overlaid (colored as
    `viz.plotting.plot_heatmaps` colors it), under a tag named after the
    method. Inputs need two spatial axes (images), channels first or last.

    Args:
        inputs: A fixed batch of images the model takes (an array; a few
            images, since each becomes a picture).
        log_dir: Folder of the TensorBoard event files.
        methods: Names of `keras_aprelu.viz` map methods. Defaults to
            `("saliency", "grad_cam")`.
        target: As in the viz methods. Defaults to `None`, the class the
            model predicts at that epoch.
        every: Log every `every` epochs. Defaults to `1`.
        **method_kwargs: Keyword arguments of the methods (such as
            `layer="act2"` or `patch_size=4`); each goes to every method
            that takes it, and one that none of them takes is an error.
            `layer` goes to the CAMs only: it names the feature map they
            weigh, and would move a gradient method's map off the images.

    Example:

    ```python
    maps = keras_aprelu.callbacks.AttributionMaps(
        x_test[:8], "logs", methods=("saliency", "hires_cam"), layer="act2")
    model.fit(x, y, epochs=5, callbacks=[maps])
    ```

    Cost: each method's cost on `inputs`, every `every` epochs; its compiled
    function is reused from epoch to epoch.
    """

    def __init__(
        self,
        inputs,
        log_dir,
        *,
        methods=("saliency", "grad_cam"),
        target=None,
        every=1,
        **method_kwargs,
    ):
        self.inputs = _check_inputs(inputs)
        if log_dir is None:
            raise ValueError(
                "`log_dir` must be the folder of the TensorBoard event files. "
                "Received: log_dir=None"
            )
        _require("matplotlib")  # the overlays' colormaps
        available = _map_methods()
        if isinstance(methods, str):
            methods = (methods,)
        methods = tuple(methods) if isinstance(methods, (list, tuple)) else methods
        if not isinstance(methods, tuple) or not methods:
            raise ValueError(
                "`methods` must be a non-empty list of viz method names. "
                f"Received: methods={methods!r}"
            )
        for name in methods:
            if name not in available:
                raise ValueError(
                    f"`methods` must name keras_aprelu.viz map methods: "
                    f"{', '.join(available)}. Received: methods={methods!r}"
                )
        self.methods = methods
        self.target = target
        super().__init__(log_dir, every)
        accepted = {
            name: set(inspect.signature(available[name]).parameters) for name in methods
        }
        # `layer` is the CAMs' feature map here: the gradient methods' own
        # `layer` would give maps over a layer, not over the images.
        for name in methods:
            if name not in viz._CAM_METHODS:
                accepted[name].discard("layer")
        for key in method_kwargs:
            if not any(key in params for params in accepted.values()):
                raise ValueError(
                    f"No method in `methods` takes the keyword argument {key!r}. "
                    f"Received: methods={methods!r}, {key}={method_kwargs[key]!r}"
                )
        self.method_kwargs = method_kwargs
        self._functions = {name: available[name] for name in methods}
        self._images = np.asarray(self.inputs)
        self._kwargs = {
            name: {k: v for k, v in method_kwargs.items() if k in accepted[name]}
            for name in methods
        }

    def _check(self, model):
        data = _inputs.read(model, self.inputs)
        if data.layout.kind != "array" or len(data.layout.spatial_axes(0)) != 2:
            raise ValueError(
                "AttributionMaps draws images: one input with two spatial "
                f"axes. Received: inputs with shape {self._images.shape}"
            )
        layer = self.method_kwargs.get("layer")
        if layer is not None:
            _layers.find_layer(model, layer)

    def _log(self, epoch, logs):
        for name, method in self._functions.items():
            maps = method(self.model, self.inputs, self.target, **self._kwargs[name])
            self._writer.images(
                name, plotting.overlay_images(self._images, maps), epoch
            )

    def get_config(self):
        return {
            "log_dir": self.log_dir,
            "methods": list(self.methods),
            "every": self.every,
            **self.method_kwargs,
        }
