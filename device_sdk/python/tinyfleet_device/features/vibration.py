"""``vib-fft``: the features the vibration models (``vib-cls``, ``vib-ad``) take, from one 3-axis window.

For each axis (x, y, z of :mod:`tinyfleet_device.sensors.vibration`), in this order:

1. the DC (gravity, sensor bias) is removed; a Hann window is applied; ``rfft``;
2. **band energies**: the power spectrum is summed over ``n_bands`` bands whose edges are spaced
   geometrically from ``f_min_hz`` to the Nyquist frequency (each band at least one FFT bin wide, so the low
   bands are single bins: the shaft harmonics 1×/2×/3× at 5–150 Hz fall in narrow bands, the bearing
   resonance at 0.8–1.4 kHz in wide ones). Scaled so that a band's value is the mean-square acceleration in
   that band in g² (Parseval with the Hann window's energy correction), then ``log10(· + 1e-9)``;
3. **time-domain statistics** of the DC-free signal: ``log10`` of the RMS (g), of the kurtosis (``m4/m2²``:
   3 for Gaussian noise, large for impulsive bearing strikes) and of the crest factor (peak / RMS).

Output: float32 vector of ``3 × n_bands`` band values (axis-major: x bands, y bands, z bands) followed by
``3 × 3`` statistics (x rms, x kurtosis, x crest, y …, z …): 105 values with the defaults. Band edges are in
Hz, so a window at another sample rate or length gives the same layout (the resolution differs). Values lie
in about [-9, 1] — one int8 input scale covers them all.

Defaults (the models' training): 3,200 Hz, 1,024-sample windows (0.32 s, 3.125 Hz resolution), 32 bands from
5 Hz. Pure numpy.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "F_MIN_HZ",
    "N_BANDS",
    "N_FEATURES",
    "SAMPLE_RATE_HZ",
    "WINDOW_SAMPLES",
    "VibrationFeatureError",
    "band_edges",
    "vibration_features",
]

SAMPLE_RATE_HZ = 3200.0
WINDOW_SAMPLES = 1024
N_BANDS = 32
F_MIN_HZ = 5.0
N_STATS = 3
N_FEATURES = 3 * N_BANDS + 3 * N_STATS
_FLOOR = 1e-9
MIN_SAMPLES = 128


class VibrationFeatureError(ValueError):
    """A window the features cannot be computed from (shape, length, non-finite values)."""


def band_edges(n_samples: int, sample_rate_hz: float, n_bands: int = N_BANDS,
               f_min_hz: float = F_MIN_HZ) -> NDArray[np.int64]:
    """FFT-bin edges (``n_bands + 1``; band ``b`` is bins ``[e[b], e[b+1])``) for an ``n_samples`` window."""
    return np.array(_band_edges(n_samples, float(sample_rate_hz), n_bands, float(f_min_hz)), dtype=np.int64)


@lru_cache(maxsize=64)
def _band_edges(n_samples: int, sample_rate_hz: float, n_bands: int, f_min_hz: float) -> tuple[int, ...]:
    if not (sample_rate_hz > 0 and math.isfinite(sample_rate_hz)):
        raise VibrationFeatureError(f"sample_rate_hz must be a positive number, not {sample_rate_hz!r}")
    n_bins = n_samples // 2 + 1
    df = sample_rate_hz / n_samples
    nyquist = sample_rate_hz / 2
    if not 0 < f_min_hz < nyquist:
        raise VibrationFeatureError(f"f_min_hz {f_min_hz} must be between 0 and the Nyquist frequency {nyquist}")
    hz = np.geomspace(f_min_hz, nyquist, n_bands + 1)
    edges = np.rint(hz / df).astype(np.int64)
    edges[0] = max(1, int(edges[0]))
    for i in range(1, len(edges)):
        edges[i] = max(int(edges[i]), int(edges[i - 1]) + 1)
    edges[-1] = max(int(edges[-1]), n_bins)  # the last band runs to the Nyquist bin, inclusive
    if edges[-2] >= n_bins:
        raise VibrationFeatureError(
            f"a {n_samples}-sample window has {n_bins} FFT bins: too few for {n_bands} bands from {f_min_hz} Hz")
    return tuple(int(e) for e in edges)


@lru_cache(maxsize=64)
def _hann(n: int) -> NDArray[np.float64]:
    w = np.hanning(n)
    w.setflags(write=False)
    return w


def vibration_features(window: NDArray[np.floating] | np.ndarray, sample_rate_hz: float = SAMPLE_RATE_HZ, *,
                       n_bands: int = N_BANDS, f_min_hz: float = F_MIN_HZ) -> NDArray[np.float32]:
    """Features of a ``(n, 3)`` window in g (see the module docstring); float32 ``(3 × n_bands + 9,)``."""
    x = np.asarray(window, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise VibrationFeatureError(f"a vibration window is (n_samples, 3) in g, not an array of shape {x.shape}")
    n = x.shape[0]
    if n < MIN_SAMPLES:
        raise VibrationFeatureError(f"a vibration window needs ≥ {MIN_SAMPLES} samples, got {n}")
    if not np.all(np.isfinite(x)):
        raise VibrationFeatureError("the vibration window holds NaN or infinite values")
    edges = band_edges(n, sample_rate_hz, n_bands, f_min_hz)

    x = x - x.mean(axis=0)
    hann = _hann(n)
    spec = np.fft.rfft(x * hann[:, None], axis=0)
    # one-sided power in g² per bin such that the sum over bins is the mean square of the signal
    power = np.abs(spec) ** 2 / (n * np.sum(hann**2))
    power[1 : (n + 1) // 2] *= 2  # fold the negative frequencies (not DC, not Nyquist)
    csum = np.vstack([np.zeros((1, 3)), np.cumsum(power, axis=0)])
    bands = csum[edges[1:]] - csum[edges[:-1]]  # (n_bands, 3)

    m2 = np.mean(x**2, axis=0)
    m4 = np.mean(x**4, axis=0)
    rms = np.sqrt(m2)
    with np.errstate(divide="ignore", invalid="ignore"):
        kurt = np.where(m2 > 0, m4 / np.where(m2 > 0, m2 * m2, 1.0), 1.0)
        crest = np.where(rms > 0, np.max(np.abs(x), axis=0) / np.where(rms > 0, rms, 1.0), 1.0)
    stats = np.stack([np.log10(rms + _FLOOR), np.log10(np.maximum(kurt, 1.0)), np.log10(np.maximum(crest, 1.0))])

    out = np.concatenate([np.log10(bands + _FLOOR).T.reshape(-1), stats.T.reshape(-1)])
    return out.astype(np.float32)
