"""The arguments every map method shares, described once.

A method's docstring lists only its own arguments under `Args:`;
`@shared_args(...)` adds the shared ones from `ARGS`, with a note of the
method's own where it has one, and puts every entry in the order of the
signature. With `returns=`, it also fills an empty `Returns:` from
`RETURNS`, for the methods whose results share a shape. So
`help(viz.hires_cam)` and the API reference show each argument where it is
used, and a change of wording is one change here.

It also checks what a hand-written list cannot keep true: every parameter
of the signature is described, and nothing else is.
"""

import inspect
import textwrap

ARGS = {
    "model": """A Keras 3 model: Functional, Sequential, nested or
        subclassed (one that was never called is built on the inputs, as
        `predict` would).""",
    "inputs": """What `model.predict` takes: an array or tensor, batch
        first (channels first or last, as the model's layers say); a list
        or dict of them for a model with several inputs; or a
        `tf.data.Dataset` of batches (optionally `(x, y)` pairs), streamed.
        NaN and Inf are refused.""",
    "target": """`None` (the predicted class), an int (one class for
        every input), a sequence of ints (one per input), or a callable
        `score(outputs) -> (batch,)` for any other objective (a new lambda
        with the same code reuses the compiled function).""",
    "layer": """A layer name, a path such as `"backbone/conv5"` into a
        nested model (or into a layer that holds layers, such as
        `"vit_backbone/vit_encoder/transformer_block_2"`), or a Layer. A
        bare name must be unique, the model's own layers first.""",
    "token_grid": """How a layer's tokens, `(batch, tokens, channels)`,
        lie over an image input: `(rows, cols)` of patch tokens, the
        tokens before them being prefix tokens (class, distillation,
        registers). Defaults to `None`: inferred from the token count and
        the input's size (65 tokens on a 32 x 32 input are 1 prefix token
        and 8 x 8 patches of 4 pixels); an ambiguous count raises and
        asks for it.""",
    "logits": """Score the pre-activation logits when the model ends in
        softmax or sigmoid. Defaults to `True`.""",
    "normalize": """Divide each map's magnitude by its largest, so that it
        lies in [0, 1] with 0 meaning no attribution. Signed maps
        (integrated gradients, occlusion) then show the magnitude; `False`
        returns the raw, signed values. Defaults to `True`.""",
    "batch_size": """Inputs per pass. Defaults to 64.""",
    "progress": """Show a progress bar. Defaults to `False`.""",
}

# The arguments of every map method.
METHOD_ARGS = (
    "model",
    "inputs",
    "target",
    "logits",
    "normalize",
    "batch_size",
    "progress",
)

# What `layer` means, per kind of method (`shared_args`' notes).
LAYER_NOTES = {
    "cam": """Its output is the feature map the CAM weighs. Defaults to the
        last feature map before the pooling or flattening that leads to the
        head, found by running the model (on ResNet50, `conv5_block3_out`);
        for a transformer (a model with `MultiHeadAttention` layers), to
        the input of its last block, whose tokens still reach a class-token
        head. The choice is logged at INFO level by the `keras_aprelu.viz`
        logger.""",
    "attribution": """Attribute to this layer's output instead of the
        inputs, as Captum's Layer* methods do: for a text model, its token
        embedding (`layer="token_embedding"`), whose token ids take no
        gradient. The map is then the layer's, `(batch, *positions)`,
        reduced over its channel (hidden) axis: `(batch, tokens)` for text,
        with exactly 0 where the inputs' `padding_mask` is 0. Defaults to
        `None`: the inputs.""",
}

RETURNS = {
    "cam": """float32 array of shape `(batch, *spatial)` of the inputs. For a
        model with several inputs, a list (or dict) with the map upsampled
        to each input that has the layer's number of spatial axes, and
        None for the others.""",
}

_INDENT = " " * 4


def _entries(lines):
    """`Args:` lines -> {name: text}, in their order."""
    entries = {}
    name = None
    for line in lines:
        if not line.startswith(_INDENT * 2):
            name, _, text = line.strip().partition(":")
            entries[name] = [text.strip()]
        else:
            entries[name].append(line.strip())
    return {name: " ".join(parts).strip() for name, parts in entries.items()}


def _wrap(name, text):
    return textwrap.fill(
        f"{name}: {text}",
        width=76,
        initial_indent=_INDENT,
        subsequent_indent=_INDENT * 2,
    )


def shared_args(*names, notes=None, returns=None):
    """Adds the shared arguments `names` to the decorated function's
    `Args:`, each with `notes[name]` appended where given, and fills its
    empty `Returns:` with `RETURNS[returns]` where given."""
    notes = notes or {}
    unknown = sorted(set(names) - set(ARGS)) + sorted(set(notes) - set(names))
    if returns is not None and returns not in RETURNS:
        unknown.append(returns)
    if unknown:
        raise ValueError(f"No shared description to add. Received: {unknown}")

    def decorate(function):
        if not function.__doc__:  # None under python -OO
            return function
        doc = inspect.cleandoc(function.__doc__)
        head, found, tail = doc.partition("\nArgs:\n")
        if not found:
            raise ValueError(f"{function.__name__}'s docstring has no `Args:`")
        # An `Args:` with only shared arguments is followed by a blank line.
        body = ["", tail[1:]] if tail.startswith("\n") else tail.split("\n\n", 1)
        own = _entries([line for line in body[0].splitlines() if line.strip()])
        for name in names:
            shared = " ".join(ARGS[name].split())
            note = " ".join(notes.get(name, "").split())
            own[name] = f"{shared} {note}" if note else shared
        order = [
            p.name if p.kind is not p.VAR_KEYWORD else f"**{p.name}"
            for p in inspect.signature(function).parameters.values()
        ]
        if sorted(own) != sorted(order):
            raise ValueError(
                f"{function.__name__}'s `Args:` must describe its parameters "
                f"{order}. Received: {list(own)}"
            )
        args = "\n".join(_wrap(name, own[name]) for name in order)
        rest = f"\n\n{body[1]}" if len(body) > 1 else ""
        if returns is not None:
            empty = "Returns:\n\n"
            if not rest.startswith(f"\n\n{empty}"):
                raise ValueError(
                    f"{function.__name__}'s docstring must follow `Args:` "
                    f"with an empty `Returns:` to fill. Received: {rest[:40]!r}"
                )
            text = textwrap.indent(inspect.cleandoc(RETURNS[returns]), _INDENT)
            rest = rest.replace(empty, f"Returns:\n{text}\n\n", 1)
        function.__doc__ = f"{head.rstrip()}\n\nArgs:\n{args}{rest}\n"
        return function

    return decorate
