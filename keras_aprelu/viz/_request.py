"""One map-method call, read from the model once and carried down.

`request(...)` checks a method's shared arguments and reads the model a
single time: the inputs and their layout, the inspection (which layers ran,
which one made the output), the targets, the final softmax or sigmoid that
`logits=True` bypasses, and the activations a guided or deconvnet rule
patches. The result, a `Request`, is all the rest of the call needs.

Its `plan` is the part a compiled function keeps: layers and flags, never
the model or the user's data, so that a compiled function, cached per
model, does not keep its model alive. `plan.logits()` and
`plan.applied()` patch the model for one computation, from what the plan
already knows, without walking the model again.
"""

import contextlib
import dataclasses

from keras_aprelu.viz import _args
from keras_aprelu.viz import _inputs
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

    def pack(self, maps):
        """Per-input maps, normalized as asked, in the inputs' structure."""
        return self.layout.pack(
            [None if m is None else _inputs.finish(m, self.normalize) for m in maps]
        )


def plan_of(model, data, *, logits, modifier=None):
    """The `Plan` of a call on `model` with the inputs `data` (read, so the
    model has been inspected). Warns once about the activations the
    modifier has no rule for."""
    squasher = _scores.final_squasher(data.inspection)
    skip = (squasher,) if logits and squasher is not None else ()
    ruled = _rules.ruled(model, modifier, skip=skip) if modifier else ()
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
):
    """Checks the shared arguments, reads the inputs and the model once, and
    returns the `Request`."""
    logits = _args.check_bool(logits, "logits")
    normalize = _args.check_bool(normalize, "normalize")
    progress = _args.check_bool(progress, "progress")
    batch_size = _args.check_positive_int(batch_size, "batch_size")
    data = _inputs.read(model, inputs)
    targets = _inputs.Targets(target, data.count, _inputs.num_classes(model))
    plan = plan_of(model, data, logits=logits, modifier=modifier)
    return Request(model, data, targets, plan, normalize, progress, batch_size)
