"""``vib-fft`` features: layout, units, and that they separate the faults the way the physics says."""

from __future__ import annotations

import numpy as np
import pytest

from tinyfleet_device.features import FEATURES, UnknownFeaturesError, get_pipeline
from tinyfleet_device.features.vibration import (
    N_BANDS,
    N_FEATURES,
    VibrationFeatureError,
    band_edges,
    vibration_features,
)
from tinyfleet_device.sensors.vibration import Fault, VibrationConfig, VibrationSimulator

CFG = VibrationConfig(shaft_hz=30.0)


def window(fault: Fault | None = None, seed: int = 0) -> np.ndarray:
    sim = VibrationSimulator(CFG, seed=seed)
    if fault:
        sim.inject(fault, 1.0)
    return sim.read(1024)


def test_layout_and_registry() -> None:
    pipe = get_pipeline("vib-fft")
    assert pipe is FEATURES["vib-fft"]
    f = pipe(window())
    assert f.dtype == np.float32
    assert f.shape == (N_FEATURES,) == (105,)
    assert f.min() > -9.5
    assert f.max() < 1.5
    card = pipe.card()
    assert card["name"] == "vib-fft"
    assert card["sample_rate_hz"] == 3200.0
    assert card["window_samples"] == 1024
    raw = FEATURES["raw"](np.ones((4, 3)))
    assert raw.shape == (12,)
    assert raw.dtype == np.float32
    with pytest.raises(UnknownFeaturesError, match=r"known: .*vib-fft"):
        get_pipeline("nope")


def test_band_energies_are_mean_squares_in_g2() -> None:
    n, fs = 4096, 3200.0
    t = np.arange(n) / fs
    x = np.zeros((n, 3))
    x[:, 0] = 0.5 * np.sin(2 * np.pi * 101.0 * t)  # 0.125 g² mean square
    x[:, 1] = 1.0  # DC only (gravity): removed
    f = vibration_features(x, fs)
    bands_x = 10 ** f[:N_BANDS].astype(np.float64)
    assert bands_x.sum() == pytest.approx(0.125, rel=0.02)
    edges = band_edges(n, fs)
    k = round(101.0 * n / fs)
    assert int(np.argmax(bands_x)) == int(np.searchsorted(edges, k, side="right")) - 1
    assert f[N_BANDS : 2 * N_BANDS].max() < -8  # the DC-only axis has no band energy
    rms_x, kurt_x, crest_x = f[3 * N_BANDS : 3 * N_BANDS + 3]
    assert 10**rms_x == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    assert 10**kurt_x == pytest.approx(1.5, rel=1e-2)  # a sinusoid's kurtosis
    assert 10**crest_x == pytest.approx(np.sqrt(2), rel=1e-2)
    assert f[3 * N_BANDS + 3 : 3 * N_BANDS + 6] == pytest.approx([np.log10(1e-9), 0.0, 0.0], abs=1e-3)


def test_features_move_with_the_faults() -> None:
    normal = np.mean([vibration_features(window(None, s)) for s in range(5)], axis=0)
    bearing = np.mean([vibration_features(window(Fault.BEARING, s)) for s in range(5)], axis=0)
    misalign = np.mean([vibration_features(window(Fault.MISALIGNMENT, s)) for s in range(5)], axis=0)
    # bearing strikes: the high bands (resonance ~1.1 kHz) and the kurtosis rise
    assert (bearing[24:32] - normal[24:32]).mean() > 1.0
    assert bearing[3 * N_BANDS + 4] > normal[3 * N_BANDS + 4] + 0.2  # y kurtosis
    # misalignment: the axial (z) RMS rises much more than the radial
    dz = misalign[3 * N_BANDS + 6] - normal[3 * N_BANDS + 6]
    dx = misalign[3 * N_BANDS] - normal[3 * N_BANDS]
    assert dz > 0.3
    assert dz > 2 * dx


@pytest.mark.parametrize(
    ("bad", "match"),
    [(np.zeros((1024,)), "shape"), (np.zeros((1024, 2)), "shape"), (np.zeros((64, 3)), "≥ 128"),
     (np.full((1024, 3), np.nan), "NaN")],
)
def test_bad_windows_are_refused(bad: np.ndarray, match: str) -> None:
    with pytest.raises(VibrationFeatureError, match=match):
        vibration_features(bad)


def test_bad_rates_are_refused() -> None:
    with pytest.raises(VibrationFeatureError, match="sample_rate_hz"):
        vibration_features(np.zeros((1024, 3)), 0.0)
    with pytest.raises(VibrationFeatureError, match="f_min_hz"):
        vibration_features(np.zeros((1024, 3)), 8.0)
