"""The machine-sound simulator: the physics each component claims is in the signal, and fault injection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from tinyfleet_device.sensors.sound import (
    MachineFault,
    MachineSoundConfig,
    MachineSoundError,
    MachineSoundSimulator,
)

FS = 16000


def spectrum_db(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f, p = scipy.signal.welch(x, FS, nperseg=8192)
    return f, 10 * np.log10(p + 1e-20)


def level_at(f: np.ndarray, p_db: np.ndarray, hz: float, width: float = 6.0) -> float:
    return float(p_db[(f > hz - width) & (f < hz + width)].max())


def floor_near(f: np.ndarray, p_db: np.ndarray, hz: float) -> float:
    return float(np.median(p_db[(f > hz - 60) & (f < hz + 60)]))


def stream(fault: str | None = None, severity: float = 1.0, seconds: float = 4.0, seed: int = 1) -> np.ndarray:
    sim = MachineSoundSimulator(MachineSoundConfig(speed_wander=0.0), seed=seed)
    if fault:
        sim.inject(fault, severity)
    return np.concatenate([sim.read(4000) for _ in range(int(seconds * FS / 4000))])


def test_normal_sound_has_hum_rotation_and_gear_mesh_tones() -> None:
    cfg = MachineSoundConfig()
    f, p = spectrum_db(stream())
    for hz in (100.0, cfg.shaft_hz, 2 * cfg.shaft_hz, cfg.gear_teeth * cfg.shaft_hz):
        assert level_at(f, p, hz) > floor_near(f, p, hz) + 10, hz
    assert level_at(f, p, 200.0) > floor_near(f, p, 200.0) + 4  # the hum's 2nd harmonic, weaker
    # rolling noise: most energy below ~600 Hz; the recording chain's high-pass: almost nothing below 40 Hz
    assert np.mean(p[(f > 150) & (f < 500)]) > np.mean(p[(f > 1500) & (f < 2500)]) + 15
    assert np.mean(p[(f > 5) & (f < 30)]) < np.mean(p[(f > 150) & (f < 500)]) - 40
    x = stream()
    assert x.dtype == np.float32
    assert np.all(np.abs(x) < 0.5)


def test_faults_change_the_sound_where_their_physics_says() -> None:
    cfg = MachineSoundConfig()
    f, normal = spectrum_db(stream())
    _, squeal = spectrum_db(stream("squeal"))
    assert level_at(f, squeal, cfg.squeal_hz, 40) > level_at(f, normal, cfg.squeal_hz, 40) + 20
    _, imbalance = spectrum_db(stream("imbalance"))
    assert level_at(f, imbalance, cfg.shaft_hz) > level_at(f, normal, cfg.shaft_hz) + 15
    _, gear = spectrum_db(stream("gear"))
    gmf = cfg.gear_teeth * cfg.shaft_hz
    for side in (gmf - cfg.shaft_hz, gmf + cfg.shaft_hz):  # sidebands of the modulated mesh
        assert level_at(f, gear, side, 3) > level_at(f, normal, side, 3) + 10
    # bearing: the envelope of the band around the structural resonance repeats at BPFO
    x = stream("bearing")
    band = scipy.signal.sosfilt(scipy.signal.butter(4, [4000, 6500], "band", fs=FS, output="sos"), x)
    env = np.abs(scipy.signal.hilbert(band))
    fe, pe = spectrum_db(env - env.mean())
    bpfo = cfg.bpfo_order * cfg.shaft_hz
    assert level_at(fe, pe, bpfo, 4) > floor_near(fe, pe, bpfo) + 10
    _, bearing = spectrum_db(x)
    assert np.mean(bearing[(f > 4500) & (f < 6000)]) > np.mean(normal[(f > 4500) & (f < 6000)]) + 10


def test_severity_scales_and_normal_clears() -> None:
    cfg = MachineSoundConfig()
    levels = []
    for severity in (0.2, 0.5, 1.0):
        f, p = spectrum_db(stream("squeal", severity))
        levels.append(level_at(f, p, cfg.squeal_hz, 40))
    assert levels[0] + 3 < levels[1] < levels[2] - 3
    sim = MachineSoundSimulator(seed=3)
    sim.inject("bearing", 0.7)
    sim.inject("gear")
    assert sim.faults == {"bearing": 0.7, "gear": 1.0}
    sim.inject("gear", 0)
    assert sim.faults == {"bearing": 0.7}
    sim.inject(MachineFault.NORMAL)
    assert sim.faults == {}
    sim.inject("bearing_fault", 0.5)  # the vibration simulator's name for it
    assert sim.faults == {"bearing": 0.5}


def test_deterministic_per_seed_and_continuous_across_reads() -> None:
    a, b, c = (MachineSoundSimulator(seed=s) for s in (7, 7, 8))
    xa, xb, xc = a.read(5000), b.read(5000), c.read(5000)
    np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(xa, xc)
    # no click at block boundaries: the sample-to-sample step there is like anywhere else
    sim = MachineSoundSimulator(seed=9)
    x = np.concatenate([sim.read(n) for n in (1000, 37, 4000, 1, 963) * 20])
    steps = np.abs(np.diff(x))
    boundaries = np.cumsum((1000, 37, 4000, 1, 963) * 20)[:-1] - 1
    assert steps[boundaries].max() < 6 * steps.std() + steps.mean()


def test_bad_arguments_are_refused() -> None:
    sim = MachineSoundSimulator()
    with pytest.raises(MachineSoundError, match="unknown machine fault 'melted'"):
        sim.inject("melted")
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(MachineSoundError, match="severity"):
            sim.inject("bearing", bad)
    for n in (0, -5, MachineSoundSimulator.MAX_READ + 1):
        with pytest.raises(MachineSoundError, match="read size"):
            sim.read(n)
    with pytest.raises(MachineSoundError, match="squeal_hz"):
        MachineSoundSimulator(MachineSoundConfig(squeal_hz=9000.0))
    with pytest.raises(MachineSoundError, match="Nyquist"):
        MachineSoundSimulator(MachineSoundConfig(gear_teeth=40))
    assert sim.faults == {}
