"""The vibration simulator's physics, checked in the spectra an analyst would look at."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt

from tinyfleet_device.sensors.vibration import (
    BEARINGS,
    Fault,
    ScheduledFault,
    VibrationConfig,
    VibrationError,
    VibrationSimulator,
)

FS = 3200.0
# A steady machine: no speed/level drift, so spectral lines stay on their bins.
STEADY = VibrationConfig(speed_drift=0.0, level_drift=0.0, shaft_hz=25.0)


def amplitude_at(x: np.ndarray, f_hz: float, fs: float = FS) -> float:
    """Peak amplitude (g) of the sinusoid at ``f_hz`` (Hann window, max over ±1 bin)."""
    n = len(x)
    w = np.hanning(n)
    spec = np.abs(np.fft.rfft((x - x.mean()) * w)) * 2 / w.sum()
    k = round(f_hz * n / fs)
    return float(spec[max(k - 1, 0) : k + 2].max())


def envelope_spectrum(x: np.ndarray, band: tuple[float, float], fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    sos = butter(4, band, btype="bandpass", fs=fs, output="sos")
    env = np.abs(hilbert(sosfiltfilt(sos, x - x.mean())))
    env -= env.mean()
    spec = np.abs(np.fft.rfft(env * np.hanning(len(env))))
    return np.fft.rfftfreq(len(env), 1 / fs), spec


def test_defect_frequencies_match_the_published_6205_values() -> None:
    # Case Western Reserve University bearing data center, drive-end 6205-2RS JEM SKF: multiples of running speed
    b = BEARINGS["6205"]
    assert b.bpfo(1.0) == pytest.approx(3.5848, abs=2e-4)
    assert b.bpfi(1.0) == pytest.approx(5.4152, abs=2e-4)
    assert b.bsf(1.0) == pytest.approx(2.3567, abs=2e-3)
    assert b.ftf(1.0) == pytest.approx(0.39828, abs=2e-4)
    # a contact angle moves the frequencies towards n/2 · f_r
    angular = BEARINGS["7205"]
    assert angular.bpfo(1.0) < angular.balls / 2 < angular.bpfi(1.0)


def test_healthy_machine_shows_shaft_harmonics_and_gravity() -> None:
    x = VibrationSimulator(STEADY, seed=3).read(16384)
    assert x.dtype == np.float32
    assert x.shape == (16384, 3)
    assert abs(float(x[:, 1].mean()) - 1.0) < 0.01  # gravity on the vertical axis
    assert abs(float(x[:, 0].mean())) < 0.01
    a1, a2, a3 = (amplitude_at(x[:, 0], k * 25.0) for k in (1, 2, 3))
    assert a1 == pytest.approx(0.020, rel=0.15)
    assert a1 > a2 > a3 > 5 * amplitude_at(x[:, 0], 2.5 * 25.0)  # lines stand above the noise between them


@pytest.mark.parametrize("axis", [0, 1])
def test_imbalance_grows_the_radial_1x_with_severity(axis: int) -> None:
    amps = []
    for sev in (0.0, 0.5, 1.0, 2.0):
        sim = VibrationSimulator(STEADY, seed=5)
        if sev:
            sim.inject(Fault.IMBALANCE, sev)
        x = sim.read(16384)
        amps.append(amplitude_at(x[:, axis], 25.0))
        axial = amplitude_at(x[:, 2], 25.0)
        twox = amplitude_at(x[:, axis], 50.0)
    assert amps == sorted(amps)
    assert amps[-1] > 5 * amps[0]
    # roughly linear in severity: +imbalance_g per unit at nominal speed (x), × stiffness on y
    gain = (amps[3] - amps[1]) / 1.5
    assert gain == pytest.approx(0.12 * (1.0 if axis == 0 else 0.8), rel=0.25)
    assert axial < amps[-1] / 4  # radial, not axial
    assert twox < amps[-1] / 10  # and 1×, not 2×


def test_misalignment_grows_the_axial_2x() -> None:
    healthy = VibrationSimulator(STEADY, seed=7).read(16384)
    sim = VibrationSimulator(STEADY, seed=7)
    sim.inject("misalignment", 1.0)
    faulty = sim.read(16384)
    assert amplitude_at(faulty[:, 2], 50.0) > 8 * amplitude_at(healthy[:, 2], 50.0)
    assert amplitude_at(faulty[:, 2], 50.0) > 1.5 * amplitude_at(faulty[:, 0], 50.0)  # axial dominates
    assert amplitude_at(faulty[:, 2], 50.0) > 1.5 * amplitude_at(faulty[:, 2], 25.0)  # 2× dominates


def test_outer_race_defect_shows_bpfo_in_the_envelope_spectrum() -> None:
    cfg = STEADY.with_(bearing_defect="outer", resonance_hz=1100.0)
    healthy = VibrationSimulator(cfg, seed=11).read(32768)[:, 1]
    sim = VibrationSimulator(cfg, seed=11)
    sim.inject(Fault.BEARING, 1.0)
    faulty = sim.read(32768)[:, 1]
    bpfo = cfg.bearing.bpfo(25.0)  # 89.6 Hz
    f, env = envelope_spectrum(faulty, (800.0, 1400.0))
    lo = f > 10
    peak = float(f[lo][np.argmax(env[lo])])
    assert abs(peak - bpfo) < 1.0 or abs(peak - 2 * bpfo) < 2.0
    near = env[np.abs(f - bpfo) < 1.0].max()
    assert near > 10 * np.median(env[lo])
    # the strikes put energy in the resonance band: far above the healthy machine's
    sos = butter(4, (800.0, 1400.0), btype="bandpass", fs=FS, output="sos")
    assert np.std(sosfiltfilt(sos, faulty)) > 5 * np.std(sosfiltfilt(sos, healthy))
    # and make the signal impulsive
    from scipy.stats import kurtosis

    assert kurtosis(sosfiltfilt(sos, healthy)) < 0.3 < 1.0 < kurtosis(sosfiltfilt(sos, faulty))  # excess kurtosis


def test_inner_race_defect_shows_bpfi_with_shaft_sidebands() -> None:
    cfg = STEADY.with_(bearing_defect="inner")
    sim = VibrationSimulator(cfg, seed=13)
    sim.inject(Fault.BEARING, 1.0)
    x = sim.read(65536)[:, 1]
    f, env = envelope_spectrum(x, (800.0, 1400.0))
    bpfi, fr = cfg.bearing.bpfi(25.0), 25.0  # 135.4 Hz
    floor = np.median(env[f > 10])

    def line(freq: float) -> float:
        return float(env[np.abs(f - freq) < 0.6].max())

    assert line(bpfi) > 10 * floor
    assert line(bpfi - fr) > 5 * floor
    assert line(bpfi + fr) > 5 * floor
    assert line(fr) > 5 * floor
    # an outer-race defect has no such sidebands around its BPFI
    assert line(cfg.bearing.bpfo(25.0)) < line(bpfi) / 3


def test_scheduled_fault_with_degradation_grows_over_time() -> None:
    cfg = STEADY.with_(schedule=(ScheduledFault(at_s=2.0, fault=Fault.IMBALANCE, severity=0.2, growth_per_s=0.1),))
    sim = VibrationSimulator(cfg, seed=17)
    before = sim.read(int(2 * FS))
    assert sim.faults == {}
    after = [sim.read(8192) for _ in range(6)]  # 2.56 s each
    assert sim.severity(Fault.IMBALANCE) == pytest.approx(0.2 + 0.1 * 6 * 8192 / FS, rel=1e-6)
    amps = [amplitude_at(w[:, 0], 25.0) for w in after]
    assert amps == sorted(amps)
    assert amplitude_at(before[:, 0], 25.0) < amps[0] < amps[-1] / 2
    # the severity is capped
    sim.inject(Fault.IMBALANCE, 10.0)
    assert sim.severity(Fault.IMBALANCE) == cfg.max_severity
    sim.inject(Fault.NORMAL)
    assert sim.faults == {}
    assert sim.severity(Fault.NORMAL) == 1.0


def test_schedule_on_the_running_simulator_takes_effect_at_its_sample() -> None:
    sim = VibrationSimulator(STEADY, seed=19)
    sim.schedule(1.0, Fault.MISALIGNMENT, 1.5)
    sim.read(3199)
    assert sim.faults == {}
    sim.read(2)
    assert sim.faults == {Fault.MISALIGNMENT: 1.5}


def test_speed_drifts_slowly_and_reproducibly() -> None:
    cfg = VibrationConfig(speed_drift=0.02, drift_tau_s=5.0)
    a, b = VibrationSimulator(cfg, seed=23), VibrationSimulator(cfg, seed=23)
    speeds = []
    for _ in range(200):
        xa, xb = a.read(320), b.read(320)
        assert np.array_equal(xa, xb)
        speeds.append(a.running_speed_hz)
    s = np.array(speeds)
    assert s.std() > 0.002 * cfg.shaft_hz  # it wanders …
    assert np.corrcoef(s[:-1], s[1:])[0, 1] > 0.8  # … slowly: 0.1 s apart, the speeds are strongly correlated
    assert not np.array_equal(VibrationSimulator(cfg, seed=24).read(320), VibrationSimulator(cfg, seed=23).read(320))


def test_strike_ringing_continues_across_reads() -> None:
    cfg = STEADY.with_(noise_g=0.0, harmonics_g=(0.0, 0.0, 0.0), bias_drift_g=0.0, slip=0.0)
    sim = VibrationSimulator(cfg, seed=29)
    sim.inject(Fault.BEARING, 1.0)
    parts = np.vstack([sim.read(n) for n in (37, 1, 500, 64, 3000)])
    whole_sim = VibrationSimulator(cfg, seed=29)
    whole_sim.inject(Fault.BEARING, 1.0)
    whole = whole_sim.read(len(parts))
    np.testing.assert_allclose(parts, whole, atol=1e-6)
    assert np.abs(whole[:, 1] - 1.0).max() > 0.1  # there are strikes


def test_bad_requests_are_refused_clearly() -> None:
    sim = VibrationSimulator()
    with pytest.raises(VibrationError, match="unknown fault 'rust'"):
        sim.inject("rust")
    with pytest.raises(VibrationError, match="severity"):
        sim.inject(Fault.IMBALANCE, float("nan"))
    with pytest.raises(VibrationError, match="n_samples"):
        sim.read(-1)
    with pytest.raises(VibrationError, match="bearing_defect"):
        VibrationConfig(bearing_defect="cage")
    with pytest.raises(VibrationError, match="Nyquist"):
        VibrationConfig(sample_rate_hz=100.0)
    assert sim.read(0).shape == (0, 3)
