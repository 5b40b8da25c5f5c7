import awgn
import numpy as np
import pytest


def test_noise_is_the_seeded_normal_draw_scaled_to_the_snr():
    # A constant image of 2s has power 4; at 0 dB the noise has variance 4.
    signals = np.full((1, 3, 4), 2.0, dtype="float32")
    noisy = awgn.add_white_noise(signals, 0.0, seed=7)
    expected = np.random.default_rng(7).standard_normal((1, 3, 4))
    # float32 storage: absolute error up to ~2e-7 of the sum.
    np.testing.assert_allclose((noisy - signals) / 2.0, expected, atol=1e-6)
    # At 20 dB the noise std is a tenth of the signal's rms.
    noisy = awgn.add_white_noise(signals, 20.0, seed=7)
    np.testing.assert_allclose((noisy - signals) / 0.2, expected, atol=1e-5)


def test_each_sample_gets_its_own_noise_power():
    rng = np.random.default_rng(0)
    signals = np.stack([np.full((200, 200), 1.0), rng.uniform(0, 3, (200, 200))])
    for snr in (5.0, 1.0, -6.0):
        noisy = awgn.add_white_noise(signals, snr, seed=1)
        measured = awgn.snr_db(signals, noisy)
        # 40,000 draws per sample: the realized power is within 2% (0.09 dB).
        np.testing.assert_allclose(measured, [snr, snr], atol=0.09)
    noise = awgn.add_white_noise(signals, 0.0, seed=1) - signals
    power = np.mean(signals**2, axis=(1, 2))
    np.testing.assert_allclose(np.mean(noise**2, axis=(1, 2)), power, rtol=0.02)
    assert power[1] > 2.5 * power[0]


def test_snr_db_by_hand():
    # Noise power 0.01 against signal power 1: 20 dB.
    assert awgn.snr_db([[1.0, -1.0]], [[1.1, -1.1]])[0] == pytest.approx(20.0)


def test_seeds_and_clean_level():
    signals = np.random.default_rng(0).uniform(size=(4, 5, 5))
    a = awgn.add_white_noise(signals, 3.0, seed=1)
    np.testing.assert_array_equal(a, awgn.add_white_noise(signals, 3.0, seed=1))
    assert not np.allclose(a, awgn.add_white_noise(signals, 3.0, seed=2))
    clean = awgn.add_white_noise(signals, None, seed=1)
    np.testing.assert_array_equal(clean, signals.astype("float32"))
    assert clean.dtype == np.float32 and a.dtype == np.float32


@pytest.mark.parametrize("snr", [float("nan"), float("inf"), True])
def test_bad_snr_is_refused(snr):
    with pytest.raises(ValueError, match=r"Received: snr_db="):
        awgn.add_white_noise(np.ones((2, 3)), snr, seed=0)


def test_a_single_sample_without_its_axis_is_refused():
    with pytest.raises(ValueError, match=r"Received: signals of shape \(3,\)"):
        awgn.add_white_noise(np.ones(3), 1.0, seed=0)
