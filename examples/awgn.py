"""Additive white Gaussian noise at a given signal-to-noise ratio.

As Zhao et al. (2020) define it for their signals, the SNR of one sample is
`10 * log10(P_signal / P_noise)`, with P the mean square over the sample.
"""

import numpy as np

__all__ = ["add_white_noise", "snr_db"]


def add_white_noise(signals, snr_db, seed):
    """`signals` plus Gaussian noise at `snr_db` decibels, per sample.

    Each sample (the first axis indexes samples) gets noise of variance
    `mean(sample**2) / 10**(snr_db / 10)`, so its expected SNR is `snr_db`.
    The noise is drawn from `numpy.random.default_rng(seed)`. Nothing is
    clipped. `snr_db=None` returns the signals unchanged (as float32).
    """
    signals = np.asarray(signals, dtype="float32")
    if snr_db is None:
        return signals
    if isinstance(snr_db, bool) or not np.isfinite(snr_db):
        raise ValueError(
            f"`snr_db` must be a finite number of decibels or None. "
            f"Received: snr_db={snr_db!r}"
        )
    if signals.ndim < 2:
        raise ValueError(
            "`signals` must have a sample axis first and at least one more. "
            f"Received: signals of shape {signals.shape}"
        )
    axes = tuple(range(1, signals.ndim))
    power = np.mean(np.square(signals, dtype="float64"), axis=axes, keepdims=True)
    std = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    noise = np.random.default_rng(seed).standard_normal(signals.shape)
    return (signals + std * noise).astype("float32")


def snr_db(signals, noisy):
    """The realized SNR of each sample of `noisy`, in decibels."""
    signals = np.asarray(signals, dtype="float64")
    noise = np.asarray(noisy, dtype="float64") - signals
    axes = tuple(range(1, signals.ndim))
    return 10.0 * np.log10(
        np.mean(signals**2, axis=axes) / np.mean(noise**2, axis=axes)
    )
