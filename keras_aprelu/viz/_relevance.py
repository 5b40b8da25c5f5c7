"""LRP and DeepLIFT: what each kind of layer does under them, in one place,
and the patches that apply it for one computation.

Both methods are one forward and one backward pass of the model, on every
backend, with no backend code. Each layer with a rule has its call
replaced, for the computation, by one whose value is the layer's own output
and whose gradient is the rule's:

    y' = stop_gradient(y) + h(x) - stop_gradient(h(x))

where `h` is linear in `x`, with coefficients held by `stop_gradient`.

- LRP: what flows back is the relevance itself, as in zennit: the backward
  pass starts from the target's score (the logit), and each rule maps the
  relevance of a layer's output to that of its input. A linear layer's
  rule is zennit's "modified gradient": terms `a_k * W_k^T (R / z)`, each
  with its own inputs `a_k` (x, its positive or negative part, ones, the
  box bounds) and weights `W_k` (`carried`, below).
- DeepLIFT: what flows back is the multiplier, as in Captum: the model runs
  on the inputs and the baselines in one batch (inputs first), the linear
  layers keep their gradient, and every nonlinear one has its
  multiplier `dy / dx` from the two halves.

Every layer that runs must have a kind (`kind_of`): a layer without one is
refused, naming it, before any work; nothing falls back to the plain
gradient in silence. Activations are the registry's (`_registry`: its
`form`); the other layers are `KINDS`, by class:

- `"linear"`: Dense and the convolutions (a separable one as its two). LRP
  applies the composite's rule; DeepLIFT keeps the gradient.
- `"affine"`: BatchNormalization. Right after a linear layer it is merged
  into it first (zennit's canonizer); elsewhere LRP gives it the epsilon
  rule. DeepLIFT keeps the gradient.
- `"sum"`: average pooling, Add, Average: linear without parameters. LRP
  splits the relevance in proportion to the inputs (zennit's Norm).
- `"max"`: max pooling (and Maxout, from the registry): winner takes all
  under LRP, Captum's cross-max rule under DeepLIFT.
- `"elementwise"`: Rescaling, Normalization and the activations: LRP passes
  relevance through; DeepLIFT rescales.
- `"route"`: layers that only move values (Flatten, Reshape, Dropout at
  inference, Concatenate, padding, cropping): the gradient routes both
  relevance and multipliers as they should.

A new kind of layer is one entry in `KINDS`, or for a user's own layer one
call of `register_relevance_rule`.
"""

import contextlib
import dataclasses

import keras
from keras import ops

from keras_aprelu.viz import _args
from keras_aprelu.viz import _layers
from keras_aprelu.viz import _registry

KINDS = {
    keras.layers.Dense: "linear",
    keras.layers.Conv1D: "linear",
    keras.layers.Conv2D: "linear",
    keras.layers.Conv3D: "linear",
    keras.layers.DepthwiseConv1D: "linear",
    keras.layers.DepthwiseConv2D: "linear",
    keras.layers.SeparableConv1D: "linear",
    keras.layers.SeparableConv2D: "linear",
    keras.layers.BatchNormalization: "affine",
    keras.layers.AveragePooling1D: "sum",
    keras.layers.AveragePooling2D: "sum",
    keras.layers.AveragePooling3D: "sum",
    keras.layers.GlobalAveragePooling1D: "sum",
    keras.layers.GlobalAveragePooling2D: "sum",
    keras.layers.GlobalAveragePooling3D: "sum",
    keras.layers.Add: "sum",
    keras.layers.Average: "sum",
    keras.layers.MaxPooling1D: "max",
    keras.layers.MaxPooling2D: "max",
    keras.layers.MaxPooling3D: "max",
    keras.layers.GlobalMaxPooling1D: "max",
    keras.layers.GlobalMaxPooling2D: "max",
    keras.layers.GlobalMaxPooling3D: "max",
    keras.layers.Rescaling: "elementwise",
    keras.layers.Normalization: "elementwise",
    keras.layers.Flatten: "route",
    keras.layers.Reshape: "route",
    keras.layers.Permute: "route",
    keras.layers.Identity: "route",
    keras.layers.Concatenate: "route",
    keras.layers.Dropout: "route",
    keras.layers.SpatialDropout1D: "route",
    keras.layers.SpatialDropout2D: "route",
    keras.layers.SpatialDropout3D: "route",
    keras.layers.GaussianDropout: "route",
    keras.layers.GaussianNoise: "route",
    keras.layers.AlphaDropout: "route",
    keras.layers.ZeroPadding1D: "route",
    keras.layers.ZeroPadding2D: "route",
    keras.layers.ZeroPadding3D: "route",
    keras.layers.Cropping1D: "route",
    keras.layers.Cropping2D: "route",
    keras.layers.Cropping3D: "route",
}

# What a user may register for a layer of their own ("linear" and "affine"
# need to know the layer's parameters, which only Keras's layers tell).
REGISTRABLE = ("route", "elementwise", "max", "sum")

EPSILON_DEEPLIFT = 1e-10  # Captum's: below it, a change counts as none
STABILIZER = 1e-6  # zennit's, of every rule but epsilon's own


def register_relevance_rule(layer_class, kind):
    """Gives a layer class of your own a rule under `viz.lrp` and
    `viz.deeplift`, for it and its subclasses.

    Args:
        layer_class: A subclass of `keras.layers.Layer`.
        kind: What the layer does to its input:
            - `"route"`: it only moves, copies or drops values (a reshape,
              a crop, an identity): relevance and multipliers follow the
              gradient;
            - `"elementwise"`: one output per input value, as an
              activation: LRP passes relevance through, DeepLIFT rescales
              by `dy / dx`;
            - `"max"`: each output is the largest of a group of inputs:
              winner takes all, and DeepLIFT's cross-max rule;
            - `"sum"`: it is linear in its inputs, without a bias (a
              pooling): LRP splits relevance in proportion to them.

    Example:

    ```python
    class Squeeze(keras.layers.Layer):
        def call(self, x):
            return keras.ops.squeeze(x, axis=1)

    viz.register_relevance_rule(Squeeze, "route")
    ```
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.Layer)):
        raise TypeError(
            "`layer_class` must be a subclass of keras.layers.Layer. "
            f"Received: layer_class={layer_class!r}"
        )
    kind = _args.check_choice(kind, "kind", REGISTRABLE)
    KINDS[layer_class] = kind


@dataclasses.dataclass(frozen=True)
class Part:
    """One layer of a model under LRP or DeepLIFT."""

    path: str
    layer: keras.layers.Layer
    kind: str  # a KINDS value, or "merged": a BatchNormalization folded
    # into the linear layer before it, whose relevance it then passes
    activation: object = None  # the registry's `Found` of its activation
    merged: object = None  # the BatchNormalization merged into it
    first: bool = False  # the first linear layer (LRP's special first rule)


def _own_kind(layer):
    for cls in type(layer).__mro__:
        if cls in KINDS:
            return KINDS[cls]
    return None


def kind_of(path, layer, squasher=None):
    """(kind, activation) of `layer`: its kind, and the registry's `Found`
    of its activation (an activation layer's, or a Dense's ReLU), None when
    it has none; kind None when it has no rule. `squasher`, the final
    softmax or sigmoid that scoring on logits bypasses, is the identity."""
    found = _registry.lookup(path, layer)
    kind = _own_kind(layer)
    if found is not None and squasher is not None and found.layer is squasher.layer:
        return (kind or "route"), None
    if found is None:
        if kind is None and isinstance(layer, keras.layers.Activation):
            return "route", None  # Activation("linear"): the identity
        return kind, None
    if found.attribute == "call":  # an activation layer, by its type
        return (kind or found.entry.form), found
    if kind is None and isinstance(layer, keras.layers.Activation):
        kind = "elementwise"  # its activation function is all it does
    if kind is None or found.entry.form != "elementwise":
        return None, found
    return kind, found


def _no_rule(path, layer, method, found=None):
    what = f"a {type(layer).__name__}"
    if found is not None and _own_kind(layer) is not None:
        what += f" whose activation {found.name!r} is not elementwise"
    return ValueError(
        f"`viz.{method}` has no rule for the layer {path!r}, {what}, and it "
        "never falls back to the plain gradient. If the layer only moves "
        "values, is elementwise, takes a maximum or sums its inputs, give "
        "it a rule with `keras_aprelu.viz.register_relevance_rule("
        f"{type(layer).__name__}, kind)`, kind one of "
        f"{', '.join(map(repr, REGISTRABLE))}. "
        f"Received: model with layer {path!r} ({type(layer).__name__})"
    )


def parts(inspection, squasher, method):
    """The `Part` of every layer that ran, in order, or the error that
    names the first without a rule."""
    calls = inspection.calls
    found_parts, seen = [], set()
    for call in calls:
        if isinstance(call.layer, keras.Model) or id(call.layer) in seen:
            continue
        seen.add(id(call.layer))
        kind, activation = kind_of(call.path, call.layer, squasher)
        if kind is None:
            raise _no_rule(call.path, call.layer, method, activation)
        found_parts.append(Part(call.path, call.layer, kind, activation))
    found_parts = _merge_batch_norms(found_parts, calls)
    first = next((i for i, p in enumerate(found_parts) if p.kind == "linear"), None)
    if first is not None:
        found_parts[first] = dataclasses.replace(found_parts[first], first=True)
    return tuple(found_parts)


def _merge_batch_norms(found, calls):
    """Marks each BatchNormalization that directly follows a linear layer
    with no activation (its only consumer, run once) as merged into it."""
    by_layer = {id(p.layer): i for i, p in enumerate(found)}
    runs = {}
    for call in calls:
        runs[id(call.layer)] = runs.get(id(call.layer), 0) + 1
    consumers = {}
    for call in calls:
        if call.source is not None:
            consumers[call.source] = consumers.get(call.source, 0) + 1
    for call in calls:
        part_index = by_layer.get(id(call.layer))
        if part_index is None or found[part_index].kind != "affine":
            continue
        if call.source is None or consumers.get(call.source) != 1:
            continue
        source = calls[call.source].layer
        source_index = by_layer.get(id(source))
        if source_index is None or runs[id(source)] != 1:
            continue
        linear = found[source_index]
        if linear.kind != "linear" or linear.activation is not None:
            continue  # (an activation other than the identity)
        if _channel_axis(linear.layer, call.input_shape) != _bn_axis(
            call.layer, call.input_shape
        ):
            continue
        found[source_index] = dataclasses.replace(linear, merged=call.layer)
        found[part_index] = dataclasses.replace(found[part_index], kind="merged")
    return found


def _channel_axis(layer, shape):
    rank = len(shape) if shape is not None else 2
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return 1
    return rank - 1


def _bn_axis(layer, shape):
    axis = layer.axis
    rank = len(shape) if shape is not None else 2
    return axis % rank if isinstance(axis, int) else None


# ---------------------------------------------------------------- the stages


def _stop(x):
    return ops.stop_gradient(x)


def _spliced(value, h):
    """`value`, exactly, with the gradient of `h`."""
    return _stop(value) + (h - _stop(h))  # adds an exact 0


def _along(vector, axis, rank):
    """`vector` shaped to broadcast along `axis` of a rank-`rank` tensor."""
    if axis % rank == rank - 1:
        return vector
    shape = [1] * rank
    shape[axis] = -1
    return ops.reshape(vector, shape)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One linear map of a layer, `apply(x, kernel) + bias`, the bias along
    the output's axis `axis`; `scale_kernel(kernel, s)` scales each output
    channel of the kernel by `s` (to merge a BatchNormalization)."""

    apply: object
    kernel: object
    bias: object
    axis: int
    scale_kernel: object

    def out(self, x, weight=None, bias=None):
        """The output on `x`, the kernel and the bias modified by the
        functions `weight` and `bias` (`_zero` drops the bias)."""
        z = self.apply(x, self.kernel if weight is None else weight(self.kernel))
        if self.bias is None:
            return z
        b = self.bias if bias is None else bias(self.bias)
        return z + _along(b, self.axis, len(z.shape))

    def merged(self, batch_norm):
        """This stage with `batch_norm` (in inference mode) folded in."""
        scale, shift = _batch_norm_affine(batch_norm)
        bias = 0.0 if self.bias is None else self.bias
        return dataclasses.replace(
            self,
            kernel=self.scale_kernel(self.kernel, scale),
            bias=bias * scale + shift,
        )


def _batch_norm_affine(layer):
    """(scale, shift) of a BatchNormalization in inference mode."""
    scale = ops.rsqrt(ops.convert_to_tensor(layer.moving_variance) + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * layer.gamma
    shift = -ops.convert_to_tensor(layer.moving_mean) * scale
    if layer.beta is not None:
        shift = shift + layer.beta
    return scale, shift


def _scale_last(kernel, scale):
    return kernel * scale


def _scale_depthwise(kernel, scale):
    # Output channel c * multiplier + m comes from input c, multiplier m.
    return kernel * ops.reshape(scale, tuple(kernel.shape[-2:]))


def _conv_apply(layer, depthwise=False, pointwise=False):
    op = ops.depthwise_conv if depthwise else ops.conv

    def apply(x, kernel):
        padding, strides = layer.padding, layer.strides
        if pointwise:
            padding, strides = "valid", 1
        elif padding == "causal":
            x = ops.pad(x, layer._compute_causal_padding())
            padding = "valid"
        return op(
            x,
            kernel,
            strides=strides,
            padding=padding,
            dilation_rate=1 if pointwise else layer.dilation_rate,
            data_format=layer.data_format,
        )

    return apply


_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def stages(layer):
    """The linear maps of a "linear" or "affine" layer, in order, with the
    layer's current weights."""
    return [
        dataclasses.replace(
            s,
            kernel=ops.convert_to_tensor(s.kernel),
            bias=None if s.bias is None else ops.convert_to_tensor(s.bias),
        )
        for s in _stages(layer)
    ]


def _stages(layer):
    if isinstance(layer, keras.layers.BatchNormalization):
        scale, shift = _batch_norm_affine(layer)

        def apply(x, kernel):
            return x * _along(kernel, layer.axis, len(x.shape))

        return [Stage(apply, scale, shift, layer.axis, _scale_last)]
    bias = layer.bias if getattr(layer, "use_bias", False) else None
    if isinstance(layer, keras.layers.Dense):
        return [Stage(ops.matmul, layer.kernel, bias, -1, _scale_last)]
    axis = 1 if layer.data_format == "channels_first" else -1
    if isinstance(layer, _SEPARABLE):
        depthwise = _conv_apply(layer, depthwise=True)
        pointwise = _conv_apply(layer, pointwise=True)
        return [
            Stage(depthwise, layer.depthwise_kernel, None, axis, _scale_depthwise),
            Stage(pointwise, layer.pointwise_kernel, bias, axis, _scale_last),
        ]
    if isinstance(layer, _DEPTHWISE):
        apply = _conv_apply(layer, depthwise=True)
        return [Stage(apply, layer.kernel, bias, axis, _scale_depthwise)]
    return [Stage(_conv_apply(layer), layer.kernel, bias, axis, _scale_last)]


# ---------------------------------------------------------------- LRP's rules
# Each is zennit 0.5.1's rule of the same name: `rule(stage, x, **params)`
# returns the stage's output on `x` and `h`. zennit's rules are sums of
# terms `a * W^T (R / z)`, each with its own inputs `a` (x, its positive or
# negative part, ones, the box's bounds) and weights `W`. A term's input is
# `carried(a, x)`: the value `a`, with the gradient of `x` scaled by `a`. The
# output `W carried(a, x) + b` is then both the term's share of the
# denominator `z` and, scaled by `stop(1 / z)`, its part of `h`: each
# convolution runs once forward and once backward.


def carried(a, x):
    """`a`, whose gradient flows to `x` multiplied by `a`."""
    return _stop(a) + (x - _stop(x)) * _stop(a)


def stabilized(z, epsilon):
    """zennit's stabilizer: `z + epsilon * sign(z)`, with sign(0) = 1."""
    return z + epsilon * ops.where(z >= 0, 1.0, -1.0)


def _shared_out(z, epsilon=STABILIZER, where=None):
    """`h` of terms whose outputs sum to `z`: `z * stop(1 / stab(z))`, only
    where `where` holds (all of it if None)."""
    scale = 1.0 / stabilized(z, epsilon)
    if where is not None:
        scale = ops.cast(where, z.dtype) * scale
    return z * _stop(scale)


def _pos(w):
    return ops.maximum(w, 0.0)


def _neg(w):
    return ops.minimum(w, 0.0)


def _zero(w):
    return ops.zeros_like(w)


def _ones(w):
    return ops.ones_like(w)


def epsilon_rule(stage, x, *, epsilon, **_):
    z = stage.out(carried(x, x))  # the output itself
    return z, _shared_out(z, epsilon)


def zplus_rule(stage, x, **_):
    positive = stage.out(carried(_pos(x), x), _pos, _pos) + stage.out(
        carried(_neg(x), x), _neg, _zero
    )
    return stage.out(x), _shared_out(positive)


def alpha2_beta1_rule(stage, x, **_):
    alpha, beta = 2.0, 1.0
    xp, xn = carried(_pos(x), x), carried(_neg(x), x)
    positive = stage.out(xp, _pos, _pos) + stage.out(xn, _neg, _zero)
    negative = stage.out(xp, _neg, _neg) + stage.out(xn, _pos, _zero)
    h = alpha * _shared_out(positive) - beta * _shared_out(negative)
    return stage.out(x), h


def gamma_rule(stage, x, *, gamma, **_):
    def up(w):
        return w + gamma * _pos(w)

    def down(w):
        return w + gamma * _neg(w)

    xp, xn = carried(_pos(x), x), carried(_neg(x), x)
    z = stage.out(x)
    positive = stage.out(xp, up, up) + stage.out(xn, down, _zero)
    negative = stage.out(xp, down, down) + stage.out(xn, up, _zero)
    h = _shared_out(positive, where=z > 0) + _shared_out(negative, where=z < 0)
    return z, h


def _bound(value, x, reduce):
    if value is None:  # the input's own extreme, per sample
        return reduce(x, axis=tuple(range(1, len(x.shape))), keepdims=True)
    return ops.cast(value, x.dtype)


def zbox_rule(stage, x, *, low, high, **_):
    low = ops.broadcast_to(_bound(low, x, ops.min), ops.shape(x))
    high = ops.broadcast_to(_bound(high, x, ops.max), ops.shape(x))
    z = stage.out(carried(x, x))  # the output itself
    box = (
        z
        - stage.out(carried(low, x), _pos, _pos)
        - stage.out(carried(high, x), _neg, _neg)
    )
    return z, _shared_out(box)


def flat_rule(stage, x, **_):
    flat = stage.out(carried(ops.ones_like(x), x), _ones, _zero)
    return stage.out(x), _shared_out(flat)


@dataclasses.dataclass(frozen=True)
class Composite:
    """zennit's composite of the same name: the rule of dense layers, of
    convolutions, and of the first layer (None: as the others)."""

    dense: object
    conv: object
    first: object = None
    first_conv_only: bool = False  # EpsilonGammaBox's first rule: convs only

    def rules(self, part, count):
        """The rules of a linear layer's `count` stages."""
        dense = isinstance(part.layer, keras.layers.Dense)
        own = self.dense if dense else self.conv
        first = part.first and self.first is not None
        if first and self.first_conv_only and dense:
            first = False
        return [self.first if first and i == 0 else own for i in range(count)]


COMPOSITES = {
    "epsilon": Composite(epsilon_rule, epsilon_rule),
    "epsilon_plus": Composite(epsilon_rule, zplus_rule),
    "epsilon_plus_flat": Composite(epsilon_rule, zplus_rule, flat_rule),
    "epsilon_gamma_box": Composite(epsilon_rule, gamma_rule, zbox_rule, True),
    "epsilon_alpha2_beta1": Composite(epsilon_rule, alpha2_beta1_rule),
    "epsilon_alpha2_beta1_flat": Composite(epsilon_rule, alpha2_beta1_rule, flat_rule),
}


def _first_input(args, kwargs):
    return args[0] if args else kwargs["inputs"]


def _with_first_input(args, kwargs, value):
    if args:
        return (value, *args[1:]), kwargs
    return args, dict(kwargs, inputs=value)


def _lrp_linear(part, original, composite, params):
    rules = composite.rules(part, len(_stages(part.layer)))

    def call(*args, **kwargs):
        # Read in the computation, so that the weights are the current ones.
        layer_stages = stages(part.layer)
        if part.merged is not None:
            layer_stages[-1] = layer_stages[-1].merged(part.merged)
        value = _first_input(args, kwargs)
        for stage, rule in zip(layer_stages, rules, strict=True):
            z, h = rule(stage, value, **params)
            value = _spliced(z, h)
        if part.merged is None:
            # The layer's output from the rule's own z, not computed again;
            # its activation, if any, passes the relevance through.
            activation = getattr(part.layer, "activation", None)
            y = z if activation is None else activation(z)
        else:
            y = original(*args, **kwargs)  # the batch norm after it needs it
        return _spliced(y, value)

    return call


def _lrp_affine(part, original, params):
    def call(*args, **kwargs):
        y = original(*args, **kwargs)
        (stage,) = stages(part.layer)
        _, h = epsilon_rule(stage, _first_input(args, kwargs), **params)
        return _spliced(y, h)

    return call


def _lrp_sum(original):
    def call(*args, **kwargs):
        y = original(*args, **kwargs)
        weighted = keras.tree.map_structure(
            lambda t: _stop(t) * t, _first_input(args, kwargs)
        )
        args2, kwargs2 = _with_first_input(args, kwargs, weighted)
        h = original(*args2, **kwargs2) / _stop(stabilized(y, STABILIZER))
        return _spliced(y, h)

    return call


def _lrp_pass(original):
    def call(*args, **kwargs):
        return _spliced(original(*args, **kwargs), _first_input(args, kwargs))

    return call


def lrp_patches(found_parts, composite, params):
    """(layer, attribute, replacement) of every layer that LRP changes;
    "max" and "route" keep their gradient, which routes relevance."""
    patches = []
    for part in found_parts:
        original = part.layer.call
        if part.kind == "linear":
            call = _lrp_linear(part, original, composite, params)
        elif part.kind == "affine":
            call = _lrp_affine(part, original, params)
        elif part.kind == "sum":
            call = _lrp_sum(original)
        elif part.kind in ("elementwise", "merged"):
            call = _lrp_pass(original)
        else:
            continue
        patches.append((part.layer, "call", call))
    return patches


# ---------------------------------------------------------------- DeepLIFT
# The model runs on [inputs; baselines]; only the inputs' rows are
# differentiated, as the baselines' rows of Captum's give the same
# multipliers. One baseline shared by every input is one row, broadcast.
# With one shared baseline row, a rule works on the whole batch, each row
# against that row (the row against itself too, which nothing uses);
# otherwise on the inputs' half against the baselines' half.


def _halves(x, y, shared):
    """(x, x0, y, y0, join): the rows a rule explains and their baselines,
    of the layer's input `x` and output `y`; `join(out)` puts the layer's
    output back together from the explained rows' `out`."""
    if shared:
        return x, x[-1:], y, y[-1:], lambda out: out
    x, x0 = ops.split(x, 2, axis=0)
    y, y0 = ops.split(y, 2, axis=0)
    return x, x0, y, y0, lambda out: ops.concatenate([out, _stop(y0)], axis=0)


def _inverse_or_zero(delta):
    small = ops.abs(delta) < EPSILON_DEEPLIFT
    return ops.where(small, 0.0, 1.0 / ops.where(small, 1.0, delta)), small


def _only_where(x, mask):
    """`x`, whose gradient reaches it only where `mask`."""
    return _stop(x) + (x - _stop(x)) * ops.cast(mask, x.dtype)


def _rescale(value_fn, grad_fn, shared):
    """An elementwise `value_fn` under the rescale rule: the multiplier
    `(y - y0) / (x - x0)`, and the gradient of `grad_fn` (the same function,
    APReLU's with its slopes held) where `x` and `x0` are too close."""

    def call(*args, **kwargs):
        x, x0, y, y0, join = _halves(
            _first_input(args, kwargs), value_fn(*args, **kwargs), shared
        )
        inverse, small = _inverse_or_zero(x - x0)
        args2, kwargs2 = _with_first_input(args, kwargs, _only_where(x, small))
        h = (x - _stop(x)) * _stop((y - y0) * inverse) + grad_fn(*args2, **kwargs2)
        return join(_spliced(y, h))

    return call


def _cross_max(original, shared):
    """A max layer under Captum's max-pooling rule: the output's change is
    split between the winners of the input and of the baseline by the
    cross maximum, and divided by the change of each input."""

    def call(*args, **kwargs):
        x, x0, y, y0, join = _halves(
            _first_input(args, kwargs), original(*args, **kwargs), shared
        )
        top = ops.maximum(y, y0)
        inverse, small = _inverse_or_zero(x - x0)
        scaled = _stop(x) + (x - _stop(x)) * _stop(inverse)
        at_base = _stop(x0) + (scaled - _stop(scaled))  # x0, exactly

        def f(value):
            return original(*_with_first_input(args, kwargs, value)[0])

        h = (
            f(scaled) * _stop(top - y0)
            + f(at_base) * _stop(y - top)
            + f(_only_where(x, small))
        )
        return join(_spliced(y, h))

    return call


def deeplift_patches(found_parts, shared):
    """(layer, attribute, replacement) of every layer that DeepLIFT
    changes: the nonlinear ones. `shared`: the batch holds one baseline
    row, after the inputs, instead of one per input."""
    patches = []
    for part in found_parts:
        layer, original, found = part.layer, part.layer.call, part.activation
        if part.kind == "max":
            patches.append((layer, "call", _cross_max(original, shared)))
        elif part.kind == "elementwise" and (
            found is None or found.attribute == "call"
        ):
            held = found.entry.forward(layer) if found and found.entry.forward else None
            patches.append(
                (layer, "call", _rescale(original, held or original, shared))
            )
        if found is not None and found.attribute == "activation":
            fn = layer.activation  # an Activation layer's, or a Dense's
            patches.append((layer, "activation", _rescale(fn, fn, shared)))
    return patches


@contextlib.contextmanager
def patched(patches):
    """Applies `patches` ((layer, attribute, replacement)s) while active."""
    with contextlib.ExitStack() as stack:
        for layer, attribute, value in patches:
            stack.enter_context(_layers.patched(layer, attribute, value))
        yield
