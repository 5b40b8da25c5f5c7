"""The noise tunnel: a gradient method averaged over noisy copies of each
input (SmoothGrad, SmoothGrad-squared and VarGrad)."""

import numpy as np

from keras_aprelu.viz import _args
from keras_aprelu.viz import _backend
from keras_aprelu.viz import _docs
from keras_aprelu.viz import _inputs
from keras_aprelu.viz import _lrp
from keras_aprelu.viz import _request
from keras_aprelu.viz import _saliency
from keras_aprelu.viz import _scores

__all__ = ["noise_tunnel"]

KINDS = ("smoothgrad", "squaregrad", "vargrad")
# The methods whose maps the tunnel averages, by name.
METHODS = {
    "saliency": _saliency.saliency,
    "gradient_x_input": _saliency.gradient_x_input,
    "integrated_gradients": _saliency.integrated_gradients,
    "lrp": _lrp.lrp,
    "deeplift": _lrp.deeplift,
}
# Keywords the tunnel sets itself on every call of the method, or that
# would change what the method returns (`return_gap`: a tuple).
_OWN = (
    "target",
    "normalize",
    "batch_size",
    "logits",
    "progress",
    "smooth_samples",
    "return_gap",
)


def _method_of(method):
    for name, function in METHODS.items():
        if method is function or method == name:
            return function
    raise ValueError(
        f"`method` must be one of {', '.join(METHODS)} (the function or its "
        f"name). Received: method={getattr(method, '__name__', method)!r}"
    )


def _aggregate(maps, kind):
    """(inputs, samples, *spatial) raw maps -> (inputs, *spatial)."""
    if kind == "smoothgrad":
        return maps.mean(axis=1)
    if kind == "squaregrad":
        return (maps**2).mean(axis=1)
    return maps.var(axis=1)  # vargrad: mean(m^2) - mean(m)^2, as Captum


@_docs.shared_args(
    *_docs.METHOD_ARGS,
    notes={"normalize": "It applies to the aggregated map."},
)
def noise_tunnel(
    method,
    model,
    inputs,
    target=None,
    *,
    samples=16,
    noise=0.2,
    kind="smoothgrad",
    seed=None,
    logits=True,
    normalize=True,
    batch_size=64,
    progress=False,
    **method_kwargs,
):
    """A gradient method's maps, aggregated over noisy copies of each input.

    Each input gets `samples` copies with Gaussian noise of standard
    deviation `noise * (max(x) - min(x))`, per input, as in SmoothGrad
    (Smilkov et al., 2017). The method maps every copy (all of them
    batched, `batch_size` per pass), scored for the class predicted on the
    clean input, and the raw maps are aggregated as Captum's `NoiseTunnel`
    does:

    - `"smoothgrad"`: their mean;
    - `"squaregrad"`: the mean of their squares (Hooker et al., 2019);
    - `"vargrad"`: their variance (Adebayo et al., 2018).

    With `noise=0`, smoothgrad is the method itself. Whether the result
    depends on the sign of the features is the method's property.

    Args:
        method: `viz.saliency` (any `modifier`), `viz.gradient_x_input`,
            `viz.integrated_gradients`, `viz.lrp` (any `composite`) or
            `viz.deeplift`, or its name.
        samples: Noisy copies per input. Defaults to 16.
        noise: Noise level relative to each input's value range. Defaults
            to 0.2.
        kind: `"smoothgrad"`, `"squaregrad"` or `"vargrad"`. Defaults to
            `"smoothgrad"`.
        seed: An int: input j of `inputs` (and model input i) then gets the
            noise of `np.random.default_rng([seed, j, i])`, however the
            batch is chunked. `None` draws a fresh seed.
        **method_kwargs: Passed to the method, for example `modifier`,
            `composite`, or `steps` and `baseline` (a number or one input's
            shape).

    Returns:
        As the method: float32 maps of shape `(batch, *spatial)`.

    Cost: `samples` times the method's cost, plus one forward pass.
    """
    function = _method_of(method)
    samples = _args.check_positive_int(samples, "samples")
    noise = _args.check_number(noise, "noise", 0)
    kind = _args.check_choice(kind, "kind", KINDS)
    if kind == "vargrad" and samples < 2:
        raise ValueError(
            "`samples` must be at least 2 for kind='vargrad': the variance of "
            f"one sample is 0. Received: samples={samples}"
        )
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    seed = _args.check_int(seed, "seed", 0)
    given = sorted(set(method_kwargs) & set(_OWN))
    if given:
        raise TypeError(
            f"`method_kwargs` must not set {', '.join(given)}: the noise tunnel "
            f"sets it. Received: {given[0]}={method_kwargs[given[0]]!r}"
        )
    run = _request.request(
        model,
        inputs,
        target,
        logits=logits,
        normalize=normalize,
        progress=progress,
        batch_size=batch_size,
    )
    layout = run.layout
    base = method_kwargs.get("baseline")
    if base is not None and any(np.ndim(b) == r for b, r in _per_input(base, layout)):
        raise ValueError(
            "`baseline` in the noise tunnel must be a number or have the shape "
            "of one input, the same for every noisy copy. Received: "
            f"baseline.shape={np.shape(base)}"
        )
    classes = _scores.classes_function(model, run.plan)

    def compute(start, xs):
        count = len(xs[0])
        chosen = run.targets.slice(start, start + count)
        if run.targets.score_fn is None and (chosen < 0).any():
            chosen = np.asarray(_backend.to_numpy(classes(xs, chosen)))
        copies = _inputs.noisy_copies(layout, xs, noise, start, seed, samples)
        maps = function(
            model,
            layout.pack(copies),
            run.targets.score_fn or np.repeat(chosen, samples),
            logits=run.logits,
            normalize=False,
            batch_size=run.batch_size,
            **method_kwargs,
        )
        maps = [maps] if layout.kind == "array" else _values(maps, layout)
        return [_aggregate(m.reshape(count, samples, *m.shape[1:]), kind) for m in maps]

    step = max(1, run.batch_size // samples)
    return run.pack(run.run(step, compute))


def _values(maps, layout):
    return [maps[k] for k in layout.keys] if layout.kind == "dict" else list(maps)


def _per_input(baseline, layout):
    values = _inputs.per_input(baseline, "baseline", layout)
    return zip(values, layout.ranks, strict=True)
