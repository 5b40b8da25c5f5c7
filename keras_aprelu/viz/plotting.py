"""Figures. The only module that uses matplotlib, imported when a function
runs; no function calls `plt.show()`: each returns its Figure."""

import warnings

import numpy as np

__all__ = [
    "overlay",
    "plot_activation_functions",
    "plot_activation_maximization",
    "plot_aprelu_slopes",
    "plot_dead_units",
    "plot_deletion_curves",
    "plot_feature_maps",
    "plot_filters",
    "plot_heatmaps",
    "plot_randomization_test",
    "plot_token_attributions",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "keras_aprelu.viz.plotting needs matplotlib. Install it with: "
            'pip install "keras-aprelu[viz]"'
        ) from error
    return plt


def _figure(rows, cols, size=2.0, widths=None):
    """A grid of panels `size` inches high; `widths`, if given, the relative
    width of each column (1 is square)."""
    plt = _pyplot()
    widths = widths or [1.0] * cols
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(size * sum(widths), size * rows),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    return fig, axes


def _axes(ax, size=(5, 3.5)):
    """`ax`, or the Axes of a new one-panel figure of `size` inches."""
    if ax is None:
        plt = _pyplot()
        _, ax = plt.subplots(figsize=size)
    return ax


def _as_image(image):
    """One image (H, W), (H, W, 1), (H, W, 3) or channels first (1|3, H, W),
    in [0, 1] or [0, 255], as what imshow takes: (H, W) or RGB in [0, 1]."""
    image = np.asarray(image, "float32")
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)  # channels first
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 3:
        low, high = image.min(), image.max()
        return (image - low) / (high - low) if high > low else image * 0
    if image.ndim == 3:
        image = image.mean(axis=-1)
    return image


def _as_signal(signal):
    """One signal (T,), (T, C) or channels first (C, T) as (T, C)."""
    signal = np.asarray(signal, "float32")
    if signal.ndim == 1:
        return signal[:, None]
    if signal.ndim == 2 and signal.shape[0] < signal.shape[1] and signal.shape[0] <= 16:
        return signal.T  # (C, T): few channels, many steps
    return signal.reshape(len(signal), -1)


def _deepest(heatmap):
    """The depth slice of a volume's map that holds the most attribution."""
    heatmap = np.abs(np.asarray(heatmap, "float32"))
    return int(np.argmax(heatmap.reshape(len(heatmap), -1).sum(axis=1)))


def _volume_slice(volume, depth):
    """Slice `depth` of a volume (D, H, W[, C]) or channels first (C, D, H, W)."""
    volume = np.asarray(volume, "float32")
    if (
        volume.ndim == 4
        and volume.shape[0] in (1, 3)
        and volume.shape[-1] not in (1, 3)
    ):
        volume = np.moveaxis(volume, 0, -1)
    return volume[depth]


def _peak(values):
    """The largest magnitude in `values`; 1.0 when there is none above 0."""
    values = np.asarray(values, "float32")
    peak = float(np.abs(values).max()) if values.size else 0.0
    return peak if peak > 0 else 1.0


def _heat_scale(heatmap, cmap):
    """The colormap and range of a heatmap, with 0 at a fixed place.

    A non-negative map (every normalized map) runs from 0, the bottom of
    `cmap` (default "jet"), to its maximum. A signed map (integrated
    gradients or occlusion with `normalize=False`) is centred on 0, in a
    diverging `cmap` by default. Letting imshow stretch each map from its
    own minimum would paint "no attribution" in mid-scale colours.
    """
    heatmap = np.asarray(heatmap, "float32")
    low = float(heatmap.min()) if heatmap.size else 0.0
    peak = _peak(heatmap)
    if low >= 0:
        return cmap or "jet", 0.0, peak
    return cmap or "RdBu_r", -peak, peak


def _spatial_rank(image, heatmap):
    """1 (a signal), 2 (an image) or 3 (a volume): the heatmap's rank, or
    for an input drawn alone, guessed from its shape."""
    if heatmap is not None:
        return np.ndim(heatmap)
    image = np.asarray(image)
    if image.ndim == 1:
        return 1
    if image.ndim == 2:
        return 2 if min(image.shape) > 16 else 1  # (H, W) or (T, C)
    if image.ndim == 3:
        return 2 if min(image.shape[-1], image.shape[0]) in (1, 3) else 3
    return 3


def _draw(ax, image, heatmap=None, alpha=0.5, cmap=None, rank=None):
    """Draws an image (2-D), a signal (1-D) or a slice of a volume (3-D),
    with an optional heatmap over it."""
    rank = rank or _spatial_rank(image, heatmap)
    ax.set_xticks([])
    ax.set_yticks([])
    if heatmap is not None:
        heatmap = np.asarray(heatmap)
        cmap, vmin, vmax = _heat_scale(heatmap, cmap)
        scale = {"cmap": cmap, "vmin": vmin, "vmax": vmax, "alpha": alpha}
    if rank == 3:
        depth = _deepest(heatmap) if heatmap is not None else len(image) // 2
        image = _volume_slice(image, depth)
        heatmap = None if heatmap is None else heatmap[depth]
        ax.set_xlabel(f"slice {depth}", fontsize=7)
        rank = 2
    if rank == 2:
        image = _as_image(image)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        if heatmap is not None:
            return ax.imshow(heatmap, **scale)
        return None
    signal = _as_signal(image)
    length = len(signal)
    low, high = float(signal.min()), float(signal.max())
    span = high - low if high > low else 1.0
    drawn = None
    if heatmap is not None:
        # A band above the trace, not under it: a thin burst's colour would
        # hide behind a black trace drawn over it.
        band = (high + 0.08 * span, high + 0.4 * span)
        drawn = ax.imshow(
            heatmap.reshape(1, -1),
            aspect="auto",
            extent=(0, length, *band),
            **{**scale, "alpha": 1.0},
        )
        ax.set_ylim(low - 0.04 * span, band[1])
    ax.plot(np.arange(length), signal, color="black", linewidth=0.8)
    return drawn


def _draw_map(ax, heatmap, cmap=None):
    """Draws a heatmap alone, on the same colour scale as `_draw`."""
    heatmap = np.asarray(heatmap, "float32")
    cmap, vmin, vmax = _heat_scale(heatmap, cmap)
    ax.set_xticks([])
    ax.set_yticks([])
    if heatmap.ndim == 3:
        depth = _deepest(heatmap)
        heatmap = heatmap[depth]
        ax.set_xlabel(f"slice {depth}", fontsize=7)
    strip = heatmap.ndim == 1  # a 1-D signal's map, drawn as a band
    return ax.imshow(
        heatmap[None] if strip else heatmap,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        aspect="auto" if strip else None,
    )


def _check_maps(maps):
    if not isinstance(maps, dict) or not maps:
        raise TypeError(
            "`maps` must be a non-empty dict from a title to maps of shape "
            f"(batch, *spatial). Received: maps={type(maps).__name__}"
        )


def _array(value, name):
    """`value` as a numeric array, or a TypeError naming what was wanted."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        array = None
    if array is None or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise TypeError(
            f"`{name}` must be a numeric array. Received: {name}={type(value).__name__}"
        )
    return array


def overlay(image, heatmap, *, alpha=0.5, cmap=None, ax=None):
    """Draws `heatmap` over `image`: an image (H, W[, C]), a signal (T[, C])
    or a volume (D, H, W[, C]), channels last or first. A volume is drawn at
    the depth slice that holds the most attribution.

    A non-negative heatmap is drawn from 0 (the bottom of `cmap`, default
    "jet") to its maximum; a signed one symmetrically around 0, in a
    diverging `cmap` (default "RdBu_r"). Zero attribution is thus always the
    same colour.

    Args:
        image: One input, without the batch axis: (H, W[, C]), (T[, C]) or
            (D, H, W[, C]), in [0, 1] or [0, 255].
        heatmap: Its map, with the input's spatial shape (a map of
            `keras_aprelu.viz` for that input).
        alpha: Opacity of the map. Defaults to 0.5.
        cmap: The colormap. Defaults to "jet" for a non-negative map and
            "RdBu_r" for a signed one.
        ax: A matplotlib Axes to draw into. Defaults to `None`: a new
            figure.

    Returns:
        The Figure.
    """
    image = _array(image, "image")
    heatmap = _array(heatmap, "heatmap")
    if not 1 <= heatmap.ndim <= 3 or not _fits(image, heatmap):
        raise ValueError(
            "`heatmap` must have the spatial shape of `image` (a signal, an "
            "image or a volume, channels first or last). Received: "
            f"heatmap.shape={heatmap.shape}, image.shape={image.shape}"
        )
    ax = _axes(ax, size=(3.0, 3.0))
    _draw(ax, image, heatmap, alpha, cmap)
    return ax.figure


def overlay_images(images, maps, *, alpha=0.5, cmap=None):
    """Each image with its map blended over it, as RGB arrays (no figure).

    The arrays TensorBoard's image summaries take, coloured as `overlay`
    colours a map; used by `keras_aprelu.callbacks.AttributionMaps`.

    Args:
        images: Images `(N, H, W[, C])`, channels last or first, in [0, 1]
            or [0, 255].
        maps: Their maps, `(N, H, W)`.
        alpha: The map's weight in the blend. Defaults to 0.5.
        cmap: The colormap. Defaults to "jet" for non-negative maps and
            "RdBu_r" for signed ones.

    Returns:
        float32 array `(N, H, W, 3)` in [0, 1].
    """
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "Drawing maps needs matplotlib. Install it with: "
            'pip install "keras-aprelu[viz]"'
        ) from error
    images = _array(images, "images")
    maps = _array(maps, "maps")
    if (
        maps.ndim != 3
        or len(maps) != len(images)
        or not all(
            _fits(image, heatmap) for image, heatmap in zip(images, maps, strict=True)
        )
    ):
        raise ValueError(
            "`maps` must hold one (H, W) map per image, of the images' spatial "
            f"shape. Received: maps.shape={maps.shape}, images.shape={images.shape}"
        )
    out = []
    for image, heatmap in zip(images, maps, strict=True):
        name, low, high = _heat_scale(heatmap, cmap)
        scaled = np.clip((heatmap - low) / (high - low), 0, 1)
        heat = matplotlib.colormaps[name](scaled)[..., :3]
        picture = _as_image(image)
        if picture.ndim == 2:
            low_, high_ = picture.min(), picture.max()
            picture = (picture - low_) / (high_ - low_) if high_ > low_ else picture * 0
            picture = np.repeat(picture[..., None], 3, axis=-1)
        out.append((1 - alpha) * picture + alpha * heat)
    return np.asarray(out, "float32")


def _fits(image, heatmap):
    """Whether `heatmap` covers the spatial axes of `image`."""
    spatial = heatmap.shape
    return image.shape in (spatial, (*spatial, image.shape[-1])) or (
        image.ndim == heatmap.ndim + 1 and image.shape[1:] == spatial
    )


def plot_heatmaps(
    images,
    maps,
    *,
    overlay=True,
    alpha=0.5,
    cmap=None,
    row_titles=None,
    max_rows=8,
    colorbar=False,
):
    """A grid: one row per input, the input and then one column per method.

    Args:
        images: A batch of inputs: images (grey or RGB, in [0, 1] or
            [0, 255]), 1-D signals with any number of channels, or 3-D
            volumes (drawn at the depth slice with the most attribution),
            channels last or first.
        maps: dict from a column title ("Saliency", "Grad-CAM", ...) to the
            maps of that method, shape `(batch, *spatial)`.
        overlay: Draw each map over its input (`True`) or alone.
        alpha: Opacity of an overlaid map. Defaults to 0.5.
        cmap: The colormap, scaled as in `overlay`. Defaults to "jet" for
            non-negative maps and "RdBu_r" for signed ones.
        row_titles: Optional titles of the rows (for example the labels).
        max_rows: Largest number of rows drawn. Defaults to 8.
        colorbar: Draw a colour bar beside every map. A signed map's bar
            is symmetric around 0 and says which side is for the class
            (red) and which against it (blue). Defaults to `False`.

    A map that is zero everywhere is marked "no attribution" in its panel
    rather than drawn as a flat colour. Long column titles wrap.

    Returns:
        The Figure.
    """
    images = _array(images, "images")
    _check_maps(maps)
    for title, values in maps.items():
        if len(values) != len(images):
            raise ValueError(
                f"Every entry of `maps` must hold one map per image "
                f"({len(images)}). Received: maps[{title!r}] of length {len(values)}"
            )
    rows = min(len(images), max_rows)
    # A column with colour bars is wider by the bars' room.
    widths = [1.0] + [1.3 if colorbar else 1.0] * len(maps)
    fig, axes = _figure(rows, 1 + len(maps), widths=widths)
    for row in range(rows):
        rank = np.ndim(next(iter(maps.values()))[row])
        _draw(axes[row, 0], images[row], rank=rank)
        if row_titles is not None:
            axes[row, 0].set_ylabel(str(row_titles[row]))
        for col, (title, values) in enumerate(maps.items(), start=1):
            ax = axes[row, col]
            heatmap = np.asarray(values[row])
            if not np.any(heatmap):
                _draw(ax, images[row], rank=rank)
                ax.text(
                    0.5,
                    0.5,
                    "no attribution",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0},
                )
            elif overlay:
                drawn = _draw(ax, images[row], heatmap, alpha, cmap)
            else:
                drawn = _draw_map(ax, heatmap, cmap)
            if colorbar and np.any(heatmap) and drawn is not None:
                _colorbar(fig, ax, drawn, signed=bool(heatmap.min() < 0))
            if row == 0:
                ax.set_title(_wrapped(title), fontsize=9)
    if rows:
        axes[0, 0].set_title("Input", fontsize=9)
    fig.tight_layout()
    return fig


def _integer_ticks():
    """Ticks at whole numbers only (channels), never at 0.5."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _wrapped(title, width=18):
    """A column title broken into lines of about `width` characters, so that
    neighbouring titles do not run into each other."""
    import textwrap

    return "\n".join(textwrap.wrap(str(title), width)) or str(title)


def _colorbar(fig, ax, drawn, signed):
    bar = fig.colorbar(drawn, ax=ax, fraction=0.046, pad=0.03)
    bar.solids.set_alpha(1.0)  # the scale itself, not the overlay's blend
    bar.ax.tick_params(labelsize=6)
    if signed:
        low, high = drawn.get_clim()
        bar.set_ticks([low, 0.0, high])
        bar.set_ticklabels([f"{low:.2g}\nagainst", "0", f"{high:.2g}\nfor"])
    return bar


def _grid(items, titles=None, cmap="gray", columns=8, limits=None):
    count = len(items)
    cols = min(columns, count)
    rows = -(-count // cols)
    fig, axes = _figure(rows, cols, size=1.2)
    for ax in axes.flat:
        ax.axis("off")
    for i, item in enumerate(items):
        ax = axes.flat[i]
        item = np.asarray(item)
        if item.ndim == 1:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.plot(item, color="black")
        else:
            if item.ndim == 3:
                ax.imshow(item)
            else:
                vmin, vmax = limits if limits is not None else (None, None)
                ax.imshow(item, cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def plot_filters(model, layer=None, *, max_filters=64, input_channel=None):
    """The kernels of a conv layer as a grid, one cell per filter.

    A kernel with 3 input channels is drawn in colour; otherwise the cell
    shows `input_channel`, or the mean over input channels when it is
    `None`. 1-D kernels are drawn as curves, 3-D kernels as their depth
    slices side by side. All cells share one colour
    scale, symmetric around 0 (white), so weights compare across filters.

    Args:
        model: A Keras 3 model.
        layer: The convolution layer: a name, a path into a nested model,
            or a Layer. Defaults to the model's first convolution.
        max_filters: Largest number of filters drawn. Defaults to 64.
        input_channel: The input channel drawn. Defaults to `None`: the
            colour kernel itself when it has 3 input channels, else the
            mean over input channels.

    Returns:
        The Figure.
    """
    from keras_aprelu.viz._filters import filters

    kernels = filters(model, layer)[:max_filters]
    if kernels.shape[-1] == 3 and kernels.ndim == 4 and input_channel is None:
        low, high = kernels.min(), kernels.max()
        items = (kernels - low) / (high - low if high > low else 1)
    elif input_channel is not None:
        items = kernels[..., input_channel]
    else:
        items = kernels.mean(axis=-1)
    if items.ndim == 4 and not (kernels.ndim == 4 and kernels.shape[-1] == 3):
        # 3-D kernels (filters, D, H, W): the D slices side by side, apart.
        gap = np.full((*items.shape[:2], items.shape[2], 1), np.nan, "float32")
        items = np.concatenate([items, gap], axis=-1)
        items = np.concatenate(list(np.moveaxis(items, 1, 0)), axis=-1)[..., :-1]
    peak = _peak(items[np.isfinite(items)])
    return _grid(
        list(items), titles=range(len(items)), cmap="bwr", limits=(-peak, peak)
    )


def plot_feature_maps(model, image, layer, *, max_maps=64, token_grid=None):
    """The feature maps of `layer` for one input, as a grid: one cell per
    channel (the channel axis is the model's data format), the middle depth
    slice for 3-D feature maps. A transformer layer's tokens over an image
    are drawn on their grid of patches, the prefix tokens left out.

    Args:
        model: A Keras 3 model.
        image: One input (without the batch axis).
        layer: The layer whose outputs are drawn: a name, a path into a
            nested model, or a Layer.
        max_maps: Largest number of channels drawn. Defaults to 64.
        token_grid: For tokens, `(rows, cols)` of the patch tokens, as in
            `viz.grad_cam`. Defaults to `None`: inferred.

    Returns:
        The Figure.
    """
    from keras_aprelu.viz import _grids
    from keras_aprelu.viz import _model
    from keras_aprelu.viz._filters import feature_maps

    image = np.asarray(image)
    maps = feature_maps(model, image[None], layer)[0]
    channels_first = _model.read(model).channels_first
    spatial = image.shape[1:] if channels_first else image.shape[:-1]
    grid = None
    if image.ndim == 3 and maps.ndim == 2:  # tokens over an image
        grid = _grids.grid_of(
            (1, *maps.shape),
            [spatial],
            _grids.check_token_grid(token_grid),
            f"the output of layer {layer!r}",
        )
    if grid is not None:
        maps = np.moveaxis(np.asarray(grid.to_map(maps[None]))[0], -1, 0)
    elif maps.ndim < 2:
        raise ValueError(
            "`layer` must have a spatial output to draw feature maps. "
            f"Received: layer={layer!r} with output shape {maps.shape}"
        )
    elif not channels_first:
        maps = np.moveaxis(maps, -1, 0)
    maps = maps[:max_maps]
    if maps.ndim == 4:  # volumes: the middle depth slice of each channel
        maps = maps[:, maps.shape[1] // 2]
    return _grid(list(maps), titles=range(len(maps)), cmap="viridis")


def plot_activation_maximization(images, titles=None):
    """The images of `activation_maximization`, as a grid.

    Args:
        images: The images, `(N, H, W[, C])`.
        titles: Optional title of each image (for example the class).

    Returns:
        The Figure.
    """
    return _grid([_as_image(image) for image in images], titles=titles)


def plot_aprelu_slopes(slopes, labels=None, *, max_channels=64):
    """How APReLU's slopes differ across samples and classes.

    For each APReLU layer, a row with two panels: the spread of each
    channel's slope over the samples (median, quartiles and range), and a
    heatmap of the mean slope per class and channel when `labels` are
    given, else per sample.

    Args:
        slopes: The dict of `aprelu_slopes`, or one `(batch, C)` array.
        labels: Optional class of each sample, shape (batch,).
        max_channels: Largest number of channels drawn per layer. Defaults
            to 64.

    Returns:
        The Figure.
    """
    if not isinstance(slopes, dict):
        slopes = {"APReLU": _array(slopes, "slopes")}
    for path, values in slopes.items():
        if np.ndim(values) != 2:
            raise ValueError(
                "`slopes` must map each layer to an array (batch, C). "
                f"Received: slopes[{path!r}].shape={np.shape(values)}"
            )
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(slopes), 2, figsize=(12, 3.2 * len(slopes)), squeeze=False
    )
    for row, (path, values) in enumerate(slopes.items()):
        values = np.asarray(values)[:, :max_channels]
        channels = np.arange(values.shape[1])
        ax = axes[row, 0]
        q = np.percentile(values, [0, 25, 50, 75, 100], axis=0)
        ax.fill_between(channels, q[0], q[4], alpha=0.2, label="min to max")
        ax.fill_between(channels, q[1], q[3], alpha=0.4, label="quartiles")
        ax.plot(channels, q[2], marker=".", label="median")
        ax.set_ylim(0, 1)
        ax.set_xlabel("channel")
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_ylabel("slope alpha")
        ax.set_title(f"{path}: slopes over {len(values)} samples")
        ax.legend(fontsize=8)
        ax = axes[row, 1]
        if labels is not None:
            labels = np.asarray(labels)
            classes = np.unique(labels)
            table = np.stack([values[labels == c].mean(axis=0) for c in classes])
            ax.set_ylabel("class")
            ax.set_yticks(range(len(classes)), [str(c) for c in classes])
        else:
            table = values
            ax.set_ylabel("sample")
        image = ax.imshow(table, aspect="auto", cmap="viridis")
        ax.set_xlabel("channel")
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_title(
            "mean slope per class" if labels is not None else "slope per sample"
        )
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def plot_dead_units(dead, *, ax=None):
    """A bar chart of `dead_units`: the fraction of dead units per layer.

    Args:
        dead: The dict of `dead_units`, from layer path to a fraction.
        ax: A matplotlib Axes to draw into. Defaults to `None`: a new
            figure.

    Returns:
        The Figure.
    """
    if not isinstance(dead, dict) or not all(
        isinstance(v, (int, float)) for v in dead.values()
    ):
        raise TypeError(
            "`dead` must be the dict of `viz.dead_units`, from layer path to "
            f"a fraction. Received: dead={type(dead).__name__}"
        )
    ax = _axes(ax, size=(max(4, 0.8 * len(dead)), 3))
    bars = ax.bar(range(len(dead)), [100 * v for v in dead.values()])
    # The value on every bar: a layer with no dead unit has no bar to see.
    ax.bar_label(bars, labels=[f"{100 * v:.1f}%" for v in dead.values()], fontsize=8)
    ax.set_xticks(range(len(dead)), list(dead), rotation=45, ha="right")
    ax.set_ylabel("dead units (%)")
    ax.set_ylim(0, 100)
    ax.figure.tight_layout()
    return ax.figure


def plot_activation_functions(
    names=None,
    *,
    leaky_slope=0.3,
    prelu_slope=0.25,
    rrelu_range=(1 / 8, 1 / 3),
    aprelu_range=(0.0, 1.0),
    x_range=(-3.0, 3.0),
):
    """The curves and derivatives of the activation functions.

    RReLU is drawn as a band between its lowest and highest slope, with its
    inference slope as a line; APReLU as the band of slopes its sigmoid
    allows (or `aprelu_range`, for example the range measured with
    `aprelu_slopes`).

    Args:
        names: A subset of `"relu"`, `"leaky_relu"`, `"prelu"`, `"rrelu"`,
            `"aprelu"`, `"sigmoid"`, `"tanh"`. Defaults to all.
        leaky_slope: LeakyReLU's negative slope. Defaults to 0.3, Keras's.
        prelu_slope: The PReLU slope drawn. Defaults to 0.25, its initial
            value.
        rrelu_range: RReLU's `(lower, upper)`. Defaults to its own.
        aprelu_range: The band of APReLU's slopes. Defaults to (0, 1),
            every slope its sigmoid allows.
        x_range: The x axis. Defaults to (-3, 3).

    Returns:
        The Figure, with the functions on the left and their derivatives on
        the right.
    """
    known = ["relu", "leaky_relu", "prelu", "rrelu", "aprelu", "sigmoid", "tanh"]
    names = known if names is None else list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"`names` must be among {known}. Received: names={names!r}")
    x = np.linspace(*x_range, 601)

    def leaky(a):
        return np.where(x > 0, x, a * x), np.where(x > 0, 1.0, a)

    sig = 1 / (1 + np.exp(-x))
    curves = {
        "relu": ("ReLU", *leaky(0.0)),
        "leaky_relu": (f"LeakyReLU ({leaky_slope})", *leaky(leaky_slope)),
        "prelu": (f"PReLU (alpha={prelu_slope}, learned)", *leaky(prelu_slope)),
        "rrelu": ("RReLU (inference)", *leaky(sum(rrelu_range) / 2)),
        "aprelu": ("APReLU (alpha per sample)", *leaky(sum(aprelu_range) / 2)),
        "sigmoid": ("sigmoid", sig, sig * (1 - sig)),
        "tanh": ("tanh", np.tanh(x), 1 - np.tanh(x) ** 2),
    }
    bands = {"rrelu": rrelu_range, "aprelu": aprelu_range}
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        label, value, slope = curves[name]
        line = left.plot(x, value, label=label)[0]
        right.plot(x, slope, color=line.get_color(), label=label)
        if name in bands:
            low, high = bands[name]
            left.fill_between(
                x, leaky(low)[0], leaky(high)[0], color=line.get_color(), alpha=0.2
            )
            right.fill_between(
                x, leaky(low)[1], leaky(high)[1], color=line.get_color(), alpha=0.2
            )
    left.set_title("f(x)")
    right.set_title("f'(x)")
    for ax in (left, right):
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.axvline(0, color="gray", linewidth=0.5)
        ax.set_xlabel("x")
    left.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _curves_of(values, name):
    """`values`: dict from a title to an array of rows; TypeError otherwise."""
    if not isinstance(values, dict) or not values:
        raise TypeError(
            f"`{name}` must be a non-empty dict from a method's name to its "
            f"results. Received: {name}={type(values).__name__}"
        )
    return {title: _array(rows, f"{name}[{title!r}]") for title, rows in values.items()}


def plot_deletion_curves(curves, *, ax=None, ylabel="score"):
    """The mean deletion (or insertion) curve of each method, with its area.

    Args:
        curves: dict from a method's name to its curves, shape `(batch,
            steps + 1)`, as `metrics.deletion(..., return_curves=True)`
            returns them.
        ax: The Axes to draw on. Defaults to a new figure.
        ylabel: Label of the score axis. Defaults to "score".

    Returns:
        The Figure. Each line is the mean curve over the inputs, with its
        quartiles shaded; the legend gives its mean area.
    """
    from keras_aprelu.viz.metrics import areas

    curves = _curves_of(curves, "curves")
    ax = _axes(ax, size=(7, 3.5))  # room for the legend beside the axes
    for title, values in curves.items():
        if values.ndim != 2 or values.shape[1] < 2:
            raise ValueError(
                "Every entry of `curves` must have shape (batch, steps + 1). "
                f"Received: curves[{title!r}].shape={values.shape}"
            )
        fraction = np.linspace(0, 1, values.shape[1])
        area = areas(values).mean()
        line = ax.plot(fraction, values.mean(axis=0), label=f"{title} ({area:.3f})")
        low, high = np.percentile(values, [25, 75], axis=0)
        ax.fill_between(fraction, low, high, color=line[0].get_color(), alpha=0.15)
    ax.set_xlabel("fraction of positions moved")
    ax.set_ylabel(ylabel)
    # Beside the axes, where it cannot hide a curve.
    ax.legend(
        fontsize=8,
        title="method (area)",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    ax.figure.tight_layout()
    return ax.figure


def plot_randomization_test(results, *, ax=None):
    """The randomization test: the rank correlation of each method's maps
    with its original maps, as the layers are randomized from the top.

    Args:
        results: dict from a method's name to what
            `metrics.randomization_test` returned for it (layer -> (batch,)
            correlations), all over the same layers.
        ax: The Axes to draw on. Defaults to a new figure.

    Returns:
        The Figure: the mean correlation per step, with its spread (one
        standard deviation) shaded. A method that passes falls towards 0.
        Correlations that are NaN (a constant map) are left out of the
        means, and the legend says how many there were.
    """
    if not isinstance(results, dict) or not results:
        raise TypeError(
            "`results` must be a non-empty dict from a method's name to the "
            "dict randomization_test returns. Received: "
            f"results={type(results).__name__}"
        )
    ax = _axes(ax, size=(7.5, 3.5))  # room for the legend beside the axes
    steps = None
    for title, result in results.items():
        if not isinstance(result, dict) or not result:
            raise TypeError(
                "Every entry of `results` must be the dict randomization_test "
                f"returns. Received: results[{title!r}]={type(result).__name__}"
            )
        values = np.stack([np.asarray(v, "float32") for v in result.values()])
        steps = list(result)
        # NaN marks a constant map, which has no ranking: left out, and
        # counted in the legend.
        flat = int(np.isnan(values).sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a step all NaN
            mean, spread = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
        x = np.arange(len(steps))
        if flat:
            title = f"{title} ({flat} of {values.size} flat maps left out)"
        line = ax.plot(x, mean, marker="o", label=title)
        ax.fill_between(
            x, mean - spread, mean + spread, color=line[0].get_color(), alpha=0.15
        )
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.set_xticks(range(len(steps)), steps, rotation=45, ha="right")
    ax.set_xlabel("randomized down to layer")
    ax.set_ylabel("Spearman correlation")
    ax.set_ylim(-1, 1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.figure.tight_layout()
    return ax.figure


def _token_rows(tokens, scores):
    """(tokens, scores) as lists of rows, checked against each other."""
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(
            "`tokens` must be a list of strings (one text) or a list of such "
            f"lists (one per text). Received: tokens={type(tokens).__name__}"
        )
    rows = [tokens] if all(isinstance(t, str) for t in tokens) else list(tokens)
    scores = _array(scores, "scores")
    if scores.ndim == 1:
        scores = scores[None]
    if scores.ndim != 2 or len(scores) != len(rows):
        raise ValueError(
            f"`scores` must hold one row of scores per text ({len(rows)}), as "
            "`viz.integrated_gradients(..., layer=...)` returns them. "
            f"Received: scores.shape={scores.shape}"
        )
    for i, (row, values) in enumerate(zip(rows, scores, strict=True)):
        if not all(isinstance(t, str) for t in row) or len(row) > len(values):
            raise ValueError(
                f"`tokens` row {i} must be strings, no more than its "
                f"{len(values)} scores (padding past the text is left out). "
                f"Received: tokens[{i}]={list(row)!r}"
            )
    drawn = [v[: len(r)] for r, v in zip(rows, scores, strict=True)]
    return [list(r) for r in rows], drawn


def plot_token_attributions(
    tokens, scores, *, row_titles=None, cmap="RdBu_r", line_chars=72, width=10.0
):
    """Words coloured by their signed attribution, one row per text.

    The scale is symmetric and diverging: 0 is white, the largest magnitude
    over all the texts is the end of the scale, red for and blue against
    the class (with "RdBu_r"), and the colour bar says so. Long texts wrap.

    Args:
        tokens: The text's tokens, a list of strings, or a list of such
            lists, one per text. A text may be shorter than its scores:
            the scores past its end (padding) are not drawn.
        scores: The per-token scores, `(tokens,)` or `(texts, tokens)`, as
            `viz.integrated_gradients(model, inputs, layer=...)` returns
            them with `normalize=False`.
        row_titles: A title above each text (the class it explains).
            Defaults to `None`.
        cmap: A diverging colormap. Defaults to "RdBu_r".
        line_chars: Characters per line before a text wraps. Defaults to
            72.
        width: The figure's width in inches. Defaults to 10.

    Returns:
        The Figure.
    """
    plt = _pyplot()
    from matplotlib import cm
    from matplotlib import colors

    rows, scores = _token_rows(tokens, scores)
    if row_titles is not None and len(row_titles) != len(rows):
        raise ValueError(
            f"`row_titles` must hold one title per text ({len(rows)}). "
            f"Received: row_titles={list(row_titles)!r}"
        )
    peak = max((float(np.max(np.abs(v))) for v in scores if v.size), default=0.0)
    norm = colors.Normalize(-(peak or 1.0), peak or 1.0)
    colormap = plt.get_cmap(cmap)
    layouts = []
    for row in rows:
        placed, line, column = [], 0, 0
        for token in row:
            if column and column + len(token) > line_chars:
                line, column = line + 1, 0
            placed.append((line, column))
            column += len(token) + 1
        layouts.append((placed, line + 1))
    # Monospaced (a character is 0.6 of the size wide), so that a line of
    # `line_chars` fills the text's width: 85 % of the figure, beside the
    # colour bar.
    fontsize = 0.85 * width * 72 / (line_chars * 0.6 * 1.05)
    line_inches = 1.9 * fontsize / 72
    heights = [lines * line_inches + 0.3 for _, lines in layouts]
    fig, axes = plt.subplots(
        len(rows),
        1,
        figsize=(width, sum(heights) + 0.6),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    fig.subplots_adjust(
        left=0.02, right=0.87, top=1 - 0.3 / fig.get_figheight(), bottom=0.02
    )
    for i, (row, values, (placed, lines)) in enumerate(
        zip(rows, scores, layouts, strict=True)
    ):
        ax = axes[i, 0]
        ax.set_xlim(0, line_chars)
        ax.set_ylim(lines + 0.3 / line_inches, 0)
        ax.axis("off")
        if row_titles is not None:
            ax.set_title(str(row_titles[i]), loc="left", fontsize=9)
        for token, value, (line, column) in zip(row, values, placed, strict=True):
            face = colormap(norm(value))
            light = 0.299 * face[0] + 0.587 * face[1] + 0.114 * face[2] > 0.5
            ax.text(
                column,
                line + 0.5,
                token,
                family="monospace",
                fontsize=fontsize,
                va="center",
                ha="left",
                color="black" if light else "white",
                bbox={"facecolor": face, "edgecolor": "none", "pad": 1.0},
            )
    mappable = cm.ScalarMappable(norm=norm, cmap=colormap)
    bar_ax = fig.add_axes([0.9, 0.2, 0.015, 0.65])
    bar = fig.colorbar(mappable, cax=bar_ax)
    bar.ax.tick_params(labelsize=7)
    low, high = norm.vmin, norm.vmax
    bar.set_ticks([low, 0.0, high])
    bar.set_ticklabels([f"{low:.2g}\nagainst", "0", f"{high:.2g}\nfor"])
    return fig
