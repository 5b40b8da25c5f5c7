"""Guided-backprop and deconvnet, applied to a model for one computation.

Which activations have a rule, and which rule, is the registry's
(`_registry`); the custom gradients are `_backend.with_rule`. Any other
nonlinearity met on the way gets one warning that names it, never a silent
plain gradient.
"""

import collections
import contextlib
import warnings

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _registry

MODIFIERS = (None, "guided", "deconvnet")


def check_modifier(modifier):
    return _args.check_choice(modifier, "modifier", MODIFIERS)


def _active(model, skip):
    return [
        found
        for found in _registry.activations(model)
        if not any(found.layer is s.layer for s in skip)
    ]


def ruled(model, mode, *, skip=()):
    """The activations of `model` that the rules of `mode` patch, as
    `_registry.Found`s. `skip` holds activations to leave alone (the
    model's final softmax or sigmoid, whose output is the score's own).
    The others, which have no rule, get one short warning: how many of each
    kind, and where the first ones are."""
    if mode is None:
        return ()
    active = _active(model, skip)
    by_name = collections.defaultdict(list)
    for found in active:
        if found.entry.rule is None:
            by_name[found.name].append(found.path)
    if by_name:
        total = sum(len(paths) for paths in by_name.values())
        parts = []
        for name, paths in by_name.items():
            shown = ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
            parts.append(f"{len(paths)} x {name} ({shown})")
        warnings.warn(
            f"{mode} backprop has no rule for {total} activation"
            f"{'s' if total > 1 else ''} of the model, so their plain gradient "
            f"is used: {'; '.join(parts)}",
            UserWarning,
            stacklevel=5,  # ruled, plan_of, request, the method, its caller
        )
    return tuple(found for found in active if found.entry.rule is not None)


@contextlib.contextmanager
def patched(ruled, mode):
    """Applies the rules of `mode` to the activations `ruled` (from
    `ruled`) while active."""
    if mode is None or not ruled:
        yield
        return
    with contextlib.ExitStack() as stack:
        for found in ruled:
            entry = found.entry
            current = getattr(found.layer, found.attribute)
            forward = entry.forward(found.layer) if entry.forward else current
            rule = _backend.with_rule(forward, mode, elementwise=entry.rule != "routed")
            stack.enter_context(_layers.patched(found.layer, found.attribute, rule))
        yield
