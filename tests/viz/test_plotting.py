import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from keras_aprelu import viz
from keras_aprelu.viz import plotting
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(6)


@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    def refuse_show(*args, **kwargs):
        raise AssertionError("plotting must never call plt.show()")

    monkeypatch.setattr(plt, "show", refuse_show)
    yield
    plt.close("all")


def images(n=3, shape=(8, 8, 2)):
    return RNG.random((n, *shape)).astype("float32")


def test_plot_heatmaps_grid():
    x = images()
    fig = plotting.plot_heatmaps(
        x,
        {"Saliency": RNG.random((3, 8, 8)), "Grad-CAM": RNG.random((3, 8, 8))},
        row_titles=["a", "b", "c"],
    )
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 9
    assert [ax.get_title() for ax in fig.axes[:3]] == ["Input", "Saliency", "Grad-CAM"]
    assert fig.axes[3].get_ylabel() == "b"


def test_plot_heatmaps_checks_lengths():
    with pytest.raises(ValueError, match=r"one map per image \(3\)"):
        plotting.plot_heatmaps(images(), {"Saliency": RNG.random((2, 8, 8))})
    with pytest.raises(TypeError, match="`maps` must be a non-empty dict"):
        plotting.plot_heatmaps(images(), [])


def test_overlay_draws_image_and_heatmap_on_given_axes():
    fig, ax = plt.subplots()
    heat = RNG.random((8, 8))
    assert plotting.overlay(images(1)[0], heat, ax=ax) is fig
    drawn = ax.get_images()
    assert len(drawn) == 2
    np.testing.assert_array_equal(drawn[1].get_array(), heat)
    with pytest.raises(ValueError, match="`heatmap` must have the spatial shape"):
        plotting.overlay(images(1)[0], RNG.random((4, 4)))


def test_overlay_of_a_signal():
    signal = RNG.normal(size=(32, 1))
    fig = plotting.overlay(signal, RNG.random(32))
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 1 and len(ax.get_images()) == 1
    # The map is a band above the trace, opaque, where the trace cannot
    # hide a thin burst: its lower edge clears the signal's maximum.
    left, right, bottom, top = ax.get_images()[0].get_extent()
    assert (left, right) == (0, 32)
    assert bottom > signal.max() and top <= ax.get_ylim()[1]
    assert ax.get_ylim()[0] < signal.min()
    assert ax.get_images()[0].get_alpha() == 1.0


def test_plot_filters_and_feature_maps():
    model = models.functional()
    fig = plotting.plot_filters(model, "conv2")
    drawn = [ax for ax in fig.axes if ax.get_images()]
    assert len(drawn) == 6
    kernel = viz.filters(model, "conv2").mean(axis=-1)
    np.testing.assert_allclose(
        drawn[2].get_images()[0].get_array(), kernel[2], rtol=1e-6
    )
    fig = plotting.plot_feature_maps(model, images(1)[0], "conv1")
    assert len([ax for ax in fig.axes if ax.get_images()]) == 4


def test_plot_aprelu_slopes_per_class():
    slopes = {"a": RNG.random((6, 4)), "b": RNG.random((6, 5))}
    labels = np.array([0, 0, 1, 1, 2, 2])
    fig = plotting.plot_aprelu_slopes(slopes, labels)
    heat = [ax for ax in fig.axes if ax.get_images()]
    assert len(heat) == 2
    table = heat[0].get_images()[0].get_array()
    np.testing.assert_allclose(table, slopes["a"].reshape(3, 2, 4).mean(axis=1))
    with pytest.raises(ValueError, match="`slopes` must map each layer"):
        plotting.plot_aprelu_slopes(RNG.random(5))


def test_plot_activation_functions():
    fig = plotting.plot_activation_functions(["relu", "rrelu", "tanh"])
    left, right = fig.axes
    assert len(left.get_lines()) == 3 + 2  # 3 curves + 2 axis lines
    x, y = left.get_lines()[1].get_data()  # RReLU at inference
    np.testing.assert_allclose(y, np.where(x > 0, x, (1 / 8 + 1 / 3) / 2 * x))
    with pytest.raises(ValueError, match="`names` must be among"):
        plotting.plot_activation_functions(["swish"])


def test_plot_dead_units_and_activation_maximization():
    fig = plotting.plot_dead_units({"a": 0.5, "b": 0.25})
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights == [50.0, 25.0]
    fig = plotting.plot_activation_maximization(images(2), titles=["0", "1"])
    assert [ax.get_title() for ax in fig.axes if ax.get_images()] == ["0", "1"]


def test_heatmap_colour_scale_keeps_zero_fixed():
    # A non-negative map runs from 0; a signed one is centred on 0 in a
    # diverging colormap; an explicit cmap is kept.
    image = images(1)[0]
    positive = np.full((8, 8), 0.2)
    positive[0, 0] = 0.8
    heat = plotting.overlay(image, positive).axes[0].get_images()[1]
    assert heat.get_clim() == (0.0, pytest.approx(0.8))
    assert heat.get_cmap().name == "jet"
    signed = np.zeros((8, 8))
    signed[1, 1], signed[2, 2] = -0.5, 2.0
    heat = plotting.overlay(image, signed).axes[0].get_images()[1]
    assert heat.get_clim() == (-2.0, 2.0) and heat.get_cmap().name == "RdBu_r"
    heat = plotting.overlay(image, signed, cmap="magma").axes[0].get_images()[1]
    assert heat.get_clim() == (-2.0, 2.0) and heat.get_cmap().name == "magma"
    alone = plotting.plot_heatmaps(images(1), {"IG": signed[None]}, overlay=False)
    heat = alone.axes[1].get_images()[0]
    assert heat.get_clim() == (-2.0, 2.0)
    np.testing.assert_array_equal(heat.get_array(), signed)


def test_filter_cells_share_a_scale_symmetric_around_zero():
    model = models.randomize(models.functional(), seed=2)
    fig = plotting.plot_filters(model, "conv2")
    peak = np.abs(viz.filters(model, "conv2").mean(axis=-1)).max()
    for ax in fig.axes:
        for image in ax.get_images():
            assert image.get_clim() == (pytest.approx(-peak), pytest.approx(peak))


def test_signals_with_several_channels():
    signals = RNG.normal(size=(3, 128, 4))
    maps = RNG.random((3, 128))
    fig = plotting.plot_heatmaps(signals, {"Saliency": maps})
    ax = fig.axes[1]
    assert len(ax.get_lines()) == 4  # one curve per channel
    np.testing.assert_array_equal(ax.get_images()[0].get_array()[0], maps[0])
    fig = plotting.overlay(signals[0], maps[0])
    assert len(fig.axes[0].get_lines()) == 4
    # channels first: (C, T)
    fig = plotting.overlay(np.moveaxis(signals[0], -1, 0), maps[0])
    assert len(fig.axes[0].get_lines()) == 4


def test_volumes_are_drawn_at_their_strongest_slice():
    volumes = RNG.random((2, 6, 10, 10, 1)).astype("float32")
    maps = np.zeros((2, 6, 10, 10))
    maps[0, 4] = 1.0
    maps[1, 1, 2:5, 2:5] = 1.0
    fig = plotting.plot_heatmaps(volumes, {"Grad-CAM": maps})
    drawn = fig.axes[1].get_images()
    np.testing.assert_array_equal(drawn[0].get_array(), volumes[0, 4, ..., 0])
    np.testing.assert_array_equal(drawn[1].get_array(), maps[0, 4])
    assert fig.axes[3].get_xlabel() == "slice 1"


def test_three_d_kernels_are_drawn_as_slices_not_colours():
    import keras

    model = keras.Sequential(
        [keras.Input((6, 6, 6, 1)), keras.layers.Conv3D(2, 3, name="conv")]
    )
    fig = plotting.plot_filters(model)
    kernel = to_numpy(model.get_layer("conv").kernel)[..., 0, 0]  # (3, 3, 3)
    drawn = np.asarray(fig.axes[0].get_images()[0].get_array())
    assert drawn.shape == (3, 11)  # three 3x3 slices with a gap between
    np.testing.assert_allclose(drawn[:, :3], kernel[0], rtol=1e-6)
    np.testing.assert_allclose(drawn[:, 4:7], kernel[1], rtol=1e-6)


def test_wrong_kinds_of_object_raise_type_errors():
    model = models.functional()
    with pytest.raises(TypeError, match="`slopes` must be a numeric array"):
        plotting.plot_aprelu_slopes(model)
    with pytest.raises(TypeError, match="`dead` must be the dict of"):
        plotting.plot_dead_units(model)
    with pytest.raises(TypeError, match="`images` must be a numeric array"):
        plotting.plot_heatmaps(model, {"a": np.zeros((1, 8, 8))})
    with pytest.raises(TypeError, match="`model` must be a Keras 3"):
        plotting.plot_filters(np.zeros((3, 3)))


def test_deletion_curves_show_each_methods_mean_and_area():
    curves = {
        "Saliency": np.array([[1.0, 0.5, 0.0], [1.0, 0.7, 0.2]]),
        "Grad-CAM": np.array([[1.0, 0.9, 0.8], [1.0, 0.8, 0.6]]),
    }
    fig, ax = plt.subplots()
    assert plotting.plot_deletion_curves(curves, ax=ax) is fig
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_xdata(), [0, 0.5, 1])
    np.testing.assert_allclose(lines[0].get_ydata(), [1.0, 0.6, 0.1])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # Saliency: the areas of its two curves are 0.5 and 0.65, mean 0.575.
    assert labels == ["Saliency (0.575)", "Grad-CAM (0.850)"]
    with pytest.raises(TypeError, match="`curves` must be a non-empty dict"):
        plotting.plot_deletion_curves(curves["Saliency"])


def test_randomization_test_plot():
    results = {
        "saliency": {"dense": np.array([0.9, 0.7]), "conv": np.array([0.2, 0.0])},
        "guided": {"dense": np.array([1.0, 1.0]), "conv": np.array([0.9, 0.9])},
    }
    fig = plotting.plot_randomization_test(results)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.8, 0.1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dense", "conv"]
    with pytest.raises(TypeError, match="Every entry of `results`"):
        plotting.plot_randomization_test({"saliency": np.zeros(2)})


def test_randomization_plot_leaves_flat_maps_out_and_says_so():
    results = {"grad_cam": {"dense": np.array([0.9, np.nan, 0.5])}}
    ax = plotting.plot_randomization_test(results).axes[0]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.7])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["grad_cam (1 of 3 flat maps left out)"]


def test_heatmaps_colorbar_zero_maps_and_long_titles():
    rng = np.random.default_rng(0)
    images = rng.random((2, 6, 6, 1))
    signed = rng.normal(size=(2, 6, 6))
    title = "Integrated gradients, signed, at the input"
    fig = plotting.plot_heatmaps(
        images,
        {title: signed, "Layer-CAM": np.zeros((2, 6, 6))},
        colorbar=True,
    )
    # Two rows of panels; one colour bar per signed map, none for zeros.
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(fig.axes) == 2 * 3 + 2 and len(bars) == 2
    labels = [t.get_text() for t in bars[0].get_yticklabels()]
    peak = np.abs(signed[0]).max()
    assert labels == [f"{-peak:.2g}\nagainst", "0", f"{peak:.2g}\nfor"]
    np.testing.assert_allclose(bars[0].get_ylim(), [-peak, peak], rtol=1e-6)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    zero_panel = panels[2]
    assert [t.get_text() for t in zero_panel.texts] == ["no attribution"]
    assert len(zero_panel.get_images()) == 1  # the input, no flat heatmap
    assert "\n" in panels[1].get_title()  # the long title wraps
    assert not plotting.plot_heatmaps(images, {"a": signed}).axes[1].texts


def test_deletion_legend_sits_beside_the_axes():
    curves = {"Saliency": np.linspace(1, 0, 17)[None].repeat(2, 0)}
    fig = plotting.plot_deletion_curves(curves)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # right of the plot area


def test_dead_unit_bars_carry_their_value_and_slope_channels_are_whole():
    fig = plotting.plot_dead_units({"act1": 0.0, "act2": 0.25})
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["0.0%", "25.0%"]  # a layer with none dead still shows
    slopes = {"act": np.random.default_rng(0).random((6, 4))}
    fig = plotting.plot_aprelu_slopes(slopes, np.array([0, 1, 0, 1, 0, 1]))
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        ticks = ax.get_xticks()
        shown = ticks[(ticks >= ax.get_xlim()[0]) & (ticks <= ax.get_xlim()[1])]
        np.testing.assert_array_equal(shown, np.round(shown))
