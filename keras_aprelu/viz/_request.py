"""One map-method call, read from the model once and carried down.

`request(...)` checks a method's shared arguments and reads the model
once, in order, each step from what the one before it found and none going
back to ask again: the model's facts (`_model.read`: a Keras model, the
inputs it declares, its data format, its classes); the user's inputs,
checked against those facts, and their layout; the inspection, the one run
of the model on one sample (which layers ran, in what order, with which
shapes, and which one made the output); the targets; and the plan (the
final softmax or sigmoid that `logits=True` bypasses, and the activations
a guided or deconvnet rule patches). The result, a `Request`, is all the
rest of the call needs.

Its `plan` is the part a compiled function keeps: layers and flags, never
the model or the user's data, so that a compiled function, cached per
model, does not keep its model alive. `plan.logits()` and
`plan.applied()` patch the model for one computation, from what the plan
already knows, without walking the model again.
"""

import contextlib
import dataclasses
import warnings

import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _model
from keras_aprelu.viz import _rules
from keras_aprelu.viz import _scores


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """What a compiled function needs of the call; holds no model."""

    layout: _inputs.Layout
    logits: bool
    squasher: object  # the final softmax or sigmoid (a `_registry.Found`), or None
    modifier: str | None  # None, "guided" or "deconvnet"
    ruled: tuple  # the activations the modifier's rules patch (`Found`s)

    @contextlib.contextmanager
    def logits_applied(self):
        """While active, with `logits`, the final softmax or sigmoid is the
        identity, so that scores are logits."""
        if not (self.logits and self.squasher is not None):
            yield
            return
        with _scores.bypassed(self.squasher):
            yield

    @contextlib.contextmanager
    def applied(self):
        """`logits_applied`, and the modifier's rules patched in."""
        with self.logits_applied(), _rules.patched(self.ruled, self.modifier):
            yield

    def forward(self, model, xs):
        """The model's outputs for a chunk (one batch per input)."""
        return model(self.layout.to_model(xs), training=False)


@dataclasses.dataclass(frozen=True, eq=False)
class Request:
    """A map method's call, checked once: the model, the inputs, the
    targets, the flags every method shares, and the plan."""

    model: object
    data: _inputs.Inputs
    targets: _inputs.Targets
    plan: Plan
    normalize: bool
    progress: bool
    batch_size: int

    @property
    def layout(self):
        return self.plan.layout

    @property
    def logits(self):
        return self.plan.logits

    def run(self, size, compute):
        """`collect` over the inputs, then the targets' count checked."""
        results = _inputs.collect(self.data, size, compute, self.progress)
        self.targets.check_count(self.data.count)
        return results

    def pack(self, maps, gradient=None):
        """Per-input maps, normalized as asked, in the inputs' structure.

        `gradient`, for a method whose maps come from a gradient, is
        `(what, probe)`: what the gradient is taken of, and `probe(xs)`,
        that gradient for a chunk of inputs. It is called only when every
        map is zero, to warn if no gradient reaches `what`
        (`_no_gradient`).
        """
        self._warn_if_no_gradient(maps, gradient, stacklevel=4)
        return self.layout.pack(
            [None if m is None else _inputs.finish(m, self.normalize) for m in maps]
        )

    def pack_one(self, maps, gradient=None):
        """One map for all the inputs (a layer's), normalized as asked;
        `gradient` as in `pack`."""
        self._warn_if_no_gradient([maps], gradient, stacklevel=5)
        return _inputs.finish(maps, self.normalize)

    def _warn_if_no_gradient(self, maps, gradient, stacklevel):
        if gradient is not None and not any(m is not None and np.any(m) for m in maps):
            _, xs = next(self.data.batches(self.batch_size))
            message = _no_gradient(*gradient, xs)
            if message:
                warnings.warn(message, UserWarning, stacklevel=stacklevel)


def _no_gradient(what, probe, xs):
    """The warning for maps that are all zero because no gradient of the
    score reaches `what`, or None if one does: then the zeros are the
    method's answer (a CAM clipped at 0, an input at its baseline).

    The gradient is taken on the first chunk and on a random perturbation
    of it, so that a point where it happens to vanish (every ReLU off at an
    all-zero input) is not mistaken for a cut in the model."""
    if np.any(_backend.to_numpy(probe(xs))):
        return None
    rng = np.random.default_rng(0)
    noisy = [
        x + (float(np.std(x)) or 1.0) * rng.standard_normal(x.shape, "float32")
        for x in xs
    ]
    try:
        if np.any(_backend.to_numpy(probe(noisy))):
            return None
    except Exception:  # noqa: BLE001
        # A model that reads its inputs as indices may refuse noisy ones
        # (PyTorch's embedding lookup raises out of range): that is a cut.
        pass
    return (
        f"Every map is zero because no gradient of the score reaches {what}: "
        "the model cuts the path (a stop_gradient, an integer cast or a "
        "lookup such as an embedding), or it does not use it for this "
        "output. Explain it with `viz.occlusion` or `viz.score_cam`, which "
        "need no gradient, or choose a layer after the cut (`layer=`)."
    )


def plan_of(data, *, logits, modifier=None):
    """The `Plan` of a call on the inputs `data` (read, so their model has
    been inspected). Warns once about the activations the modifier has no
    rule for."""
    squasher = _scores.final_squasher(data.inspection)
    skip = (squasher,) if logits and squasher is not None else ()
    ruled = _rules.ruled(data.model, modifier, skip=skip) if modifier else ()
    return Plan(data.layout, logits, squasher, modifier, ruled)


def request(
    model,
    inputs,
    target,
    *,
    logits,
    normalize,
    progress,
    batch_size,
    modifier=None,
    input_gradients=False,
):
    """Checks the shared arguments, reads the inputs and the model once, and
    returns the `Request`. `input_gradients`: the method differentiates with
    respect to the inputs, which the model must not take as integers."""
    logits = _args.check_bool(logits, "logits")
    normalize = _args.check_bool(normalize, "normalize")
    progress = _args.check_bool(progress, "progress")
    batch_size = _args.check_positive_int(batch_size, "batch_size")
    facts = _model.read(model)
    data = _inputs.read(facts, inputs)
    if input_gradients:
        _inputs.check_gradient_reaches_inputs(facts, data.layout)
    targets = _inputs.Targets(target, data.count, facts.num_classes)
    plan = plan_of(data, logits=logits, modifier=modifier)
    return Request(model, data, targets, plan, normalize, progress, batch_size)
