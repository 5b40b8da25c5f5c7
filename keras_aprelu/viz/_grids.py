"""How a layer's values lie over the inputs: the one place that knows.

A layer's output is read as a map over the input's spatial axes:

- an image's feature map, (batch, *spatial, channels), or channels first
  as the model's layers say (`_inputs.Layout.channels_first`);
- a 1-D signal's, (batch, steps, channels), over an input with one
  spatial axis (a signal, or token ids, where each token is a position);
- a transformer's tokens, (batch, tokens, channels), over an image: the
  prefix tokens (a class token, a distillation token, registers) come
  first and the rest are the patches, row by row, a (rows, cols) grid.
  Tokens are channels last whatever the model's `data_format`.

`grid_of` decides which, from the shapes alone, before any work, and
`to_map` lays a batch of values out as (batch, *map_spatial, channels).
"""

import dataclasses

import keras

# More prefix tokens than this (a class token, a distillation token and
# registers) is not guessed: `token_grid=` says it.
MAX_PREFIX_TOKENS = 16


@dataclasses.dataclass(frozen=True)
class TokenGrid:
    """`prefix` leading tokens, then `rows * cols` patch tokens, row by
    row."""

    prefix: int
    rows: int
    cols: int

    def __str__(self):
        return f"{self.prefix} prefix token(s) and a {self.rows} x {self.cols} grid"

    def to_map(self, values):
        """(batch, tokens, channels) -> (batch, rows, cols, channels)."""
        patches = values[:, self.prefix :]
        return keras.ops.reshape(patches, (-1, self.rows, self.cols, values.shape[-1]))

    def row_to_map(self, values):
        """(batch, ..., tokens) -> (batch, ..., rows, cols): one value per
        token (per head, say)."""
        patches = values[..., self.prefix :]
        return keras.ops.reshape(
            patches, (-1, *values.shape[1:-1], self.rows, self.cols)
        )


def check_token_grid(token_grid):
    """`token_grid`, None or (rows, cols) of positive ints, as a tuple."""
    if token_grid is None:
        return None
    if (
        not isinstance(token_grid, (tuple, list))
        or len(token_grid) != 2
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in token_grid
        )
    ):
        raise ValueError(
            "`token_grid` must be None or (rows, cols), two positive ints: "
            "the grid of patch tokens after the prefix tokens. "
            f"Received: token_grid={token_grid!r}"
        )
    return tuple(token_grid)


def _candidates(tokens, height, width):
    """The (prefix, rows, cols) that square patches of one integer size give
    a height x width image, with a few prefix tokens (fewer than the
    patches). Patches that tile the image exactly are preferred; only if
    none fits are the ones that leave a border (a convolution with
    "valid" padding drops it) considered."""
    exact, border = set(), set()
    for patch in range(1, max(height, width) + 1):
        rows, cols = height // patch, width // patch
        prefix = tokens - rows * cols
        if rows and cols and 0 <= prefix <= min(MAX_PREFIX_TOKENS, rows * cols - 1):
            tiles = height % patch == 0 and width % patch == 0
            (exact if tiles else border).add(TokenGrid(prefix, rows, cols))
    return sorted(exact or border, key=lambda g: g.prefix)


def grid_of(shape, spatial_shapes, token_grid, what):
    """How values of `shape` (batch first, channels last for tokens) lie
    over inputs of `spatial_shapes`: a `TokenGrid`, or None when they are
    a map already (as many spatial axes as an input: an image's feature
    map, or a sequence over a 1-D input).

    Tokens, (batch, tokens, channels), over an image input whose spatial
    shape is (height, width), are a grid of patches: `token_grid` (rows,
    cols) if given, else the only split of `tokens` into a few prefix
    tokens and the grid of square patches of one integer size. `what`
    names the values in errors.
    """
    ranks = {len(s) for s in spatial_shapes}
    images = [s for s in spatial_shapes if len(s) == 2]
    is_sequence = shape is not None and len(shape) == 3 and 1 not in ranks
    if token_grid is not None:
        if not is_sequence or not images:
            raise ValueError(
                "`token_grid` lays out tokens, (batch, tokens, channels), "
                "over an image input, but "
                f"{what} has shape {shape} and the inputs have "
                f"{' or '.join(str(r) for r in sorted(ranks))} spatial axes. "
                f"Received: token_grid={token_grid!r}"
            )
        rows, cols = token_grid
        prefix = shape[1] - rows * cols
        if prefix < 0:
            raise ValueError(
                f"`token_grid` has {rows * cols} patches, more than the "
                f"{shape[1]} tokens of {what}. Received: "
                f"token_grid={token_grid!r}"
            )
        return TokenGrid(prefix, rows, cols)
    if not is_sequence or not images:
        return None
    height, width = images[0]
    found = _candidates(shape[1], height, width)
    if len(found) == 1:
        return found[0]
    if not found:
        why = (
            f"no grid of square patches of the {height} x {width} input "
            f"leaves 0 to {MAX_PREFIX_TOKENS} prefix tokens"
        )
    else:
        why = "it could be " + ", or ".join(str(g) for g in found)
    raise ValueError(
        f"{what} has {shape[1]} tokens, and {why}: give the grid of patch "
        "tokens as `token_grid=(rows, cols)` (the tokens before it are "
        "prefix tokens). Received: token_grid=None"
    )


def channel_axis(rank, layout, grid):
    """The channel axis of a layer's values of `rank` (batch included):
    None for (batch, features), the last for tokens, else the layout's."""
    if rank < 3:
        return None
    if grid is not None or not layout.channels_first:
        return rank - 1
    return 1


def to_map(values, layout, grid):
    """A batch of a layer's values as (batch, *map_spatial, channels):
    tokens over their grid, an image's channels moved last."""
    if grid is not None:
        return grid.to_map(values)
    if not layout.channels_first:
        return values
    return keras.ops.transpose(values, [0, *range(2, len(values.shape)), 1])
