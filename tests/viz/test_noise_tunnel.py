"""The noise tunnel: smoothgrad, squaregrad and vargrad over noisy copies."""

import keras
import numpy as np
import pytest

from keras_aprelu import viz
from tests.backend_testing import to_numpy
from tests.viz import models

RNG = np.random.default_rng(31)

METHODS = {
    "saliency": {},
    "guided": {"modifier": "guided"},
    "gradient_x_input": {},
    "integrated_gradients": {"steps": 4},
    "lrp": {"composite": "epsilon_alpha2_beta1"},
    "deeplift": {"baseline": 0.2},
}


def method_of(name):
    return viz.saliency if name == "guided" else getattr(viz, name)


@pytest.fixture(scope="module")
def model():
    return models.randomize(models.functional(), seed=12)


@pytest.mark.parametrize("name", list(METHODS))
def test_without_noise_the_kinds_are_the_method_its_square_and_zero(model, name):
    x = RNG.random((3, 8, 8, 2)).astype("float32")
    kwargs = METHODS[name]
    plain = method_of(name)(model, x, 1, normalize=False, **kwargs)
    for kind, expected in (
        ("smoothgrad", plain),
        ("squaregrad", plain**2),
        ("vargrad", 0 * plain),
    ):
        got = viz.noise_tunnel(
            method_of(name),
            model,
            x,
            1,
            samples=3,
            noise=0.0,
            kind=kind,
            seed=0,
            normalize=False,
            **kwargs,
        )
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_gradient_x_input_of_a_linear_model_by_hand():
    # score = x . w, so each copy's map is (x + n) * w; the noise of input j
    # is np.random.default_rng([seed, j, 0]), scaled by noise * range(x_j).
    inp = keras.Input((5,))
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model(inp, dense(inp))
    w = to_numpy(dense.kernel)[:, 0]
    x = RNG.normal(size=(3, 5)).astype("float32")
    copies = np.stack(
        [
            x[j]
            + 0.3
            * np.ptp(x[j])
            * np.random.default_rng([7, j, 0]).standard_normal((4, 5))
            for j in range(3)
        ]
    )
    maps = copies * w  # (inputs, samples, features)
    for kind, expected in (
        ("smoothgrad", maps.mean(1)),
        ("squaregrad", (maps**2).mean(1)),
        ("vargrad", maps.var(1)),
    ):
        got = viz.noise_tunnel(
            "gradient_x_input",
            model,
            x,
            0,
            samples=4,
            noise=0.3,
            kind=kind,
            seed=7,
            normalize=False,
            batch_size=5,  # 1 input and its 4 copies per chunk
        )
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_noise_is_per_input_whatever_the_chunking(model):
    x = RNG.random((5, 8, 8, 2)).astype("float32")
    small = viz.noise_tunnel(viz.saliency, model, x, samples=3, seed=4, batch_size=3)
    large = viz.noise_tunnel(viz.saliency, model, x, samples=3, seed=4, batch_size=64)
    np.testing.assert_allclose(small, large, rtol=1e-5, atol=1e-6)
    other = viz.noise_tunnel(viz.saliency, model, x, samples=3, seed=5)
    assert np.abs(other - large).max() > 1e-3
    # vargrad = squaregrad - smoothgrad^2, with the same noise
    kinds = {
        kind: viz.noise_tunnel(
            viz.gradient_x_input,
            model,
            x,
            samples=3,
            seed=4,
            kind=kind,
            normalize=False,
        )
        for kind in ("smoothgrad", "squaregrad", "vargrad")
    }
    np.testing.assert_allclose(
        kinds["vargrad"],
        kinds["squaregrad"] - kinds["smoothgrad"] ** 2,
        rtol=1e-3,
        atol=1e-6,
    )
    assert kinds["vargrad"].max() > 0


def test_every_copy_is_scored_for_the_clean_prediction(model):
    x = RNG.random((4, 8, 8, 2)).astype("float32")
    predicted = np.argmax(to_numpy(model(x)), axis=1)
    np.testing.assert_allclose(
        viz.noise_tunnel(viz.saliency, model, x, samples=3, noise=0.5, seed=1),
        viz.noise_tunnel(
            viz.saliency, model, x, predicted, samples=3, noise=0.5, seed=1
        ),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((viz.grad_cam,), {}, ValueError, "`method` must be one of saliency"),
        ((viz.saliency,), {"kind": "mean"}, ValueError, "`kind` must be one of"),
        ((viz.saliency,), {"noise": float("inf")}, ValueError, "`noise` must be"),
        ((viz.saliency,), {"samples": 0}, ValueError, "`samples` must be a positive"),
        ((viz.saliency,), {"smooth_samples": 4}, TypeError, "`method_kwargs` must not"),
        (
            (viz.integrated_gradients,),
            {"return_gap": True},
            TypeError,
            r"`method_kwargs` must not set return_gap.*Received: return_gap=True",
        ),
        (
            (viz.saliency,),
            {"kind": "vargrad", "samples": 1},
            ValueError,
            r"`samples` must be at least 2 for kind='vargrad'.*Received: samples=1",
        ),
        (
            (viz.integrated_gradients,),
            {"baseline": np.zeros((2, 8, 8, 2))},
            ValueError,
            "`baseline` in the noise tunnel",
        ),
    ],
)
def test_bad_arguments(model, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        viz.noise_tunnel(*args, model, np.zeros((2, 8, 8, 2)), **kwargs)
