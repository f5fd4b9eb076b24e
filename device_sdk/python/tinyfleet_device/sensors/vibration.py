"""A 3-axis accelerometer on a rotating machine (motor → coupling → pump/fan), simulated from the physics of the
faults that vibration monitoring looks for.

Axes (sensor mounted on the bearing housing): ``x`` radial horizontal, ``y`` radial vertical (gravity: the
reading carries +1 g DC on ``y``), ``z`` axial (along the shaft). Units: g. Output: float32 ``(n, 3)``.

What the signal is made of, per sample at time ``t`` (``φ(t)`` = shaft angle, the integral of the running
speed ``f_r(t)``):

* **Rotation harmonics** — every real rotor has some residual imbalance, some misalignment and some
  looseness, so a healthy machine already shows peaks at 1×, 2× and 3× the running speed:
  ``Σ_k A_k sin(k φ + θ_k)`` on each axis (radial > axial), with per-machine amplitudes and phases.
* **Imbalance** (mass eccentricity ``m e``) is a force rotating with the shaft, ``F = m e ω²``: it grows the
  **1×** component, **radially** (``x`` and ``y`` in quadrature: the rotor's orbit; ``y`` a little stiffer) and
  barely axially. Its amplitude is ``severity × imbalance_g`` at the nominal speed and scales with
  ``(f_r / f_nominal)²`` as the speed drifts (centrifugal force).
* **Misalignment** of the coupling (angular and parallel offset) bends the shaft twice per revolution: it
  grows the **2×** component (and some 1×), strongly **axially** (``z``) — the classic signature that sets it
  apart from imbalance.
* **Rolling-element bearing defects**: each time a ball rolls over a spall on a race it strikes it; the strike
  rings the housing's **structural resonance** ``f_n`` (a decaying sinusoid
  ``e^{-ζ 2π f_n τ} sin(2π f_n √(1-ζ²) τ)``, ``τ`` = time since the strike). The strikes repeat at the
  bearing's defect frequencies, from its geometry (``n`` balls of diameter ``d`` on pitch diameter ``D``,
  contact angle ``α``):

  ``BPFO = n/2 · f_r · (1 − d/D · cos α)`` (outer race, fixed: strikes of constant strength, the defect sits in
  the load zone), ``BPFI = n/2 · f_r · (1 + d/D · cos α)`` (inner race: the defect turns with the shaft and
  passes through the load zone once a revolution, so its strikes are **amplitude-modulated at 1×** —
  sidebands at BPFI ± f_r), ``BSF = D/(2d) · f_r · (1 − (d/D · cos α)²)`` and ``FTF = f_r/2 · (1 − d/D · cos α)``
  (cage). The balls slip a little, so strike times jitter by ~1 % of a period. The resonance carries the
  energy to high frequencies (a band the healthy machine leaves to noise); **envelope analysis** (band-pass
  around ``f_n``, Hilbert magnitude, spectrum) recovers the strike rate — BPFO or BPFI — as a peak.
* **Noise**: white sensor noise (``noise_g`` rms per axis; a MEMS accelerometer's noise density over its
  bandwidth).
* **Slow drift**: the running speed wanders (an Ornstein–Uhlenbeck process, ``speed_drift`` relative std,
  time constant ``drift_tau_s``: load and supply changes of an induction motor), the overall level wanders
  (``level_drift``: load, temperature), and each axis' DC bias wanders a little (sensor thermal drift).

Faults are injected on command (:meth:`VibrationSimulator.inject`) or on a schedule (``VibrationConfig.schedule``
or :meth:`VibrationSimulator.schedule`) at a time of the simulation clock (samples read / sample rate), with a
severity that can grow while the machine runs (``growth_per_s``: degradation, capped at ``max_severity``).
Severity 1.0 is "clearly faulty": for imbalance, a 1× of ~0.12 g at 30 Hz is ~6 mm/s peak velocity, zone C of
ISO 10816-3 (a healthy machine is below ~1.5 mm/s here). Severities combine: several faults can be present at
once; injecting ``Fault.NORMAL`` clears them all.

Everything random is drawn from one ``numpy.random.Generator`` seeded by ``seed``: the same seed, config and
sequence of calls (read sizes included) give the same samples. The deterministic part of the signal is a
function of the simulation clock and is continuous across reads (shaft phase, ringing of a strike that began
in the previous read); noise and drift draws depend on how reads are split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BEARINGS",
    "BearingGeometry",
    "Fault",
    "ScheduledFault",
    "VibrationConfig",
    "VibrationError",
    "VibrationSimulator",
    "random_machine",
]

FloatArray = NDArray[np.float64]


class VibrationError(ValueError):
    """A configuration, fault or read request the simulator cannot honour."""


class Fault(StrEnum):
    NORMAL = "normal"
    IMBALANCE = "imbalance"
    MISALIGNMENT = "misalignment"
    BEARING = "bearing_fault"


@dataclass(frozen=True, slots=True)
class BearingGeometry:
    """A rolling-element bearing: ``balls`` of ``ball_diameter_mm`` on ``pitch_diameter_mm``, ``contact_angle_deg``."""

    name: str
    balls: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.balls < 3 or not 0 < self.ball_diameter_mm < self.pitch_diameter_mm:
            raise VibrationError(f"bearing {self.name!r}: needs ≥ 3 balls and 0 < ball diameter < pitch diameter")
        if not 0 <= self.contact_angle_deg < 90:
            raise VibrationError(f"bearing {self.name!r}: contact angle must be in [0, 90) degrees")

    @property
    def _ratio(self) -> float:
        return self.ball_diameter_mm / self.pitch_diameter_mm * math.cos(math.radians(self.contact_angle_deg))

    def bpfo(self, shaft_hz: float) -> float:
        """Ball pass frequency, outer race."""
        return self.balls / 2 * shaft_hz * (1 - self._ratio)

    def bpfi(self, shaft_hz: float) -> float:
        """Ball pass frequency, inner race."""
        return self.balls / 2 * shaft_hz * (1 + self._ratio)

    def bsf(self, shaft_hz: float) -> float:
        """Ball spin frequency."""
        return self.pitch_diameter_mm / (2 * self.ball_diameter_mm) * shaft_hz * (1 - self._ratio**2)

    def ftf(self, shaft_hz: float) -> float:
        """Fundamental train (cage) frequency."""
        return shaft_hz / 2 * (1 - self._ratio)


#: Common deep-groove ball bearings (catalogue geometry).
BEARINGS: dict[str, BearingGeometry] = {
    "6205": BearingGeometry("6205", balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04),
    "6206": BearingGeometry("6206", balls=9, ball_diameter_mm=9.53, pitch_diameter_mm=46.5),
    "6305": BearingGeometry("6305", balls=8, ball_diameter_mm=10.32, pitch_diameter_mm=44.5),
    "6308": BearingGeometry("6308", balls=8, ball_diameter_mm=15.08, pitch_diameter_mm=65.0),
    "7205": BearingGeometry("7205", balls=13, ball_diameter_mm=7.94, pitch_diameter_mm=38.5, contact_angle_deg=40),
}


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    """Inject ``fault`` at ``at_s`` seconds of simulation time, with ``severity`` growing by ``growth_per_s``."""

    at_s: float
    fault: Fault
    severity: float = 1.0
    growth_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class VibrationConfig:
    """One machine. Amplitudes in g (peak), frequencies in Hz."""

    sample_rate_hz: float = 3200.0
    shaft_hz: float = 29.5  # 1770 rpm: a 4-pole induction motor on 60 Hz with ~1.7 % slip
    harmonics_g: tuple[float, float, float] = (0.020, 0.008, 0.004)  # healthy 1×, 2×, 3× (radial)
    axial_fraction: float = 0.3  # healthy axial harmonics relative to radial
    bearing: BearingGeometry = BEARINGS["6205"]
    bearing_defect: str = "outer"  # which race Fault.BEARING damages: "outer" or "inner"
    resonance_hz: float = 1100.0
    damping: float = 0.05  # ζ of the housing resonance
    slip: float = 0.01  # jitter of strike times, fraction of a strike period (rolling elements slip)
    imbalance_g: float = 0.12  # 1× radial added at severity 1, nominal speed
    misalignment_g: float = 0.10  # 2× axial added at severity 1 (radial 2× and axial 1× in proportion)
    bearing_g: float = 0.35  # peak of one strike's ringing at severity 1
    noise_g: float = 0.004  # white noise rms per axis
    speed_drift: float = 0.01  # relative std of the running speed's slow wander
    level_drift: float = 0.05  # relative std of the overall level's slow wander
    bias_drift_g: float = 0.002  # std of each axis' DC bias wander
    drift_tau_s: float = 20.0
    gravity_g: float = 1.0  # DC on y (radial vertical)
    max_severity: float = 3.0
    schedule: tuple[ScheduledFault, ...] = ()

    def __post_init__(self) -> None:
        if not self.sample_rate_hz > 0:
            raise VibrationError("sample_rate_hz must be > 0")
        if not 0 < self.shaft_hz * 3 < self.sample_rate_hz / 2:
            raise VibrationError("shaft_hz must be > 0 and its 3rd harmonic below the Nyquist frequency")
        if not 0 < self.resonance_hz < self.sample_rate_hz / 2:
            raise VibrationError("resonance_hz must be between 0 and the Nyquist frequency")
        if not 0 < self.damping < 1:
            raise VibrationError("damping must be in (0, 1)")
        if self.bearing_defect not in ("outer", "inner"):
            raise VibrationError(f"bearing_defect must be 'outer' or 'inner', not {self.bearing_defect!r}")
        for name in ("noise_g", "speed_drift", "level_drift", "bias_drift_g", "slip", "imbalance_g",
                     "misalignment_g", "bearing_g", "axial_fraction"):
            if getattr(self, name) < 0:
                raise VibrationError(f"{name} must be ≥ 0")
        if not self.drift_tau_s > 0:
            raise VibrationError("drift_tau_s must be > 0")

    def with_(self, **changes: object) -> VibrationConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(slots=True)
class _FaultState:
    severity: float = 0.0
    growth_per_s: float = 0.0


@dataclass(slots=True)
class _Ou:
    """An Ornstein–Uhlenbeck process sampled exactly at arbitrary steps."""

    std: float
    tau_s: float
    value: float = 0.0

    def step(self, dt: float, rng: np.random.Generator) -> float:
        if self.std == 0:
            return 0.0
        a = math.exp(-dt / self.tau_s)
        self.value = self.value * a + self.std * math.sqrt(1 - a * a) * float(rng.standard_normal())
        return self.value


_RADIAL_PHASE_Y = math.pi / 2  # imbalance orbit: y lags x by 90°
_Y_STIFFNESS = 0.8  # y responds a little less (vertical support is stiffer)
_BEARING_DIRECTION = np.array([0.5, 1.0, 0.25])  # strikes load the vertical radial direction most


class VibrationSimulator:
    """A stateful accelerometer stream; see the module docstring for the model."""

    def __init__(self, config: VibrationConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or VibrationConfig()
        self._rng = np.random.default_rng(seed)
        c = self.config
        self.sample_rate_hz: float = c.sample_rate_hz
        self._n = 0  # samples produced (the simulation clock)
        self._phase = 0.0  # shaft angle, in revolutions
        self._speed = _Ou(c.speed_drift, c.drift_tau_s)
        self._level = _Ou(c.level_drift, c.drift_tau_s)
        self._bias = [_Ou(c.bias_drift_g, c.drift_tau_s) for _ in range(3)]
        self._speed_prev = 0.0
        self._level_prev = 0.0
        self._bias_prev = np.zeros(3)
        # per-machine phases of the harmonics, per axis
        self._theta = self._rng.uniform(0, 2 * math.pi, size=(3, 3))
        self._faults: dict[Fault, _FaultState] = {f: _FaultState() for f in Fault if f is not Fault.NORMAL}
        self._schedule: list[ScheduledFault] = sorted(c.schedule, key=lambda s: s.at_s)
        # bearing strikes: the strike phase (in strike periods) and strikes still ringing from the last read
        self._next_strike = 1.0 + self._rng.uniform(0, 1)
        self._ringing: list[tuple[float, float]] = []  # (time s, amplitude g)

    # ------------------------------------------------------------------------------------------------ control

    @property
    def time_s(self) -> float:
        """Simulation time: samples read so far / sample rate."""
        return self._n / self.sample_rate_hz

    @property
    def running_speed_hz(self) -> float:
        """The running speed at the simulation clock."""
        return self.config.shaft_hz * (1 + self._speed_prev)

    def severity(self, fault: Fault) -> float:
        """The current severity of ``fault`` (0 when absent; for NORMAL, 1 when no fault is present)."""
        if fault is Fault.NORMAL:
            return 1.0 if all(s.severity == 0 for s in self._faults.values()) else 0.0
        return self._faults[fault].severity

    @property
    def faults(self) -> dict[Fault, float]:
        """Faults present and their severities."""
        return {f: s.severity for f, s in self._faults.items() if s.severity > 0}

    def inject(self, fault: Fault | str, severity: float = 1.0, *, growth_per_s: float = 0.0) -> None:
        """Set ``fault`` to ``severity`` now (NORMAL clears every fault); it grows by ``growth_per_s`` per second."""
        try:
            f = Fault(fault)
        except ValueError as exc:
            raise VibrationError(f"unknown fault {fault!r} (known: {', '.join(Fault)})") from exc
        if not (math.isfinite(severity) and severity >= 0) or not math.isfinite(growth_per_s):
            raise VibrationError(f"severity must be a finite number ≥ 0 (got {severity!r}, growth {growth_per_s!r})")
        if f is Fault.NORMAL:
            for s in self._faults.values():
                s.severity, s.growth_per_s = 0.0, 0.0
            return
        self._faults[f] = _FaultState(min(severity, self.config.max_severity), growth_per_s)

    def schedule(self, at_s: float, fault: Fault | str, severity: float = 1.0, *, growth_per_s: float = 0.0) -> None:
        """Inject ``fault`` when the simulation clock reaches ``at_s``."""
        try:
            f = Fault(fault)
        except ValueError as exc:
            raise VibrationError(f"unknown fault {fault!r} (known: {', '.join(Fault)})") from exc
        if not (math.isfinite(at_s) and math.isfinite(severity) and severity >= 0 and math.isfinite(growth_per_s)):
            raise VibrationError("at_s, severity and growth_per_s must be finite numbers (severity ≥ 0)")
        self._schedule.append(ScheduledFault(at_s, f, severity, growth_per_s))
        self._schedule.sort(key=lambda s: s.at_s)

    # ------------------------------------------------------------------------------------------------ signal

    def read(self, n_samples: int) -> NDArray[np.float32]:
        """The next ``n_samples`` samples, float32 ``(n, 3)`` in g."""
        if n_samples < 0:
            raise VibrationError(f"n_samples must be ≥ 0, not {n_samples}")
        out = np.empty((n_samples, 3), dtype=np.float32)
        done = 0
        while done < n_samples:
            # split at the next scheduled injection so it takes effect at its sample
            take = n_samples - done
            if self._schedule:
                due = math.ceil(self._schedule[0].at_s * self.sample_rate_hz) - self._n
                if due <= 0:
                    s = self._schedule.pop(0)
                    self.inject(s.fault, s.severity, growth_per_s=s.growth_per_s)
                    continue
                take = min(take, due)
            out[done : done + take] = self._chunk(take)
            done += take
        return out

    def _chunk(self, n: int) -> FloatArray:
        c = self.config
        fs = c.sample_rate_hz
        dt = n / fs
        t0 = self._n / fs
        t = t0 + np.arange(n) / fs
        ramp = (np.arange(1, n + 1) / n) if n else np.zeros(0)
        rng = self._rng

        # slow drift: OU values at the end of the chunk, linearly interpolated across it
        speed_new = self._speed.step(dt, rng)
        level_new = self._level.step(dt, rng)
        bias_new = np.array([b.step(dt, rng) for b in self._bias])
        speed = self._speed_prev + (speed_new - self._speed_prev) * ramp
        level = 1 + self._level_prev + (level_new - self._level_prev) * ramp
        bias = self._bias_prev + (bias_new - self._bias_prev) * ramp[:, None]
        self._speed_prev, self._level_prev, self._bias_prev = speed_new, level_new, bias_new

        fr = c.shaft_hz * (1 + speed)  # instantaneous running speed
        phase = self._phase + np.cumsum(fr) / fs  # revolutions, at each sample
        phase_start = self._phase
        self._phase = float(phase[-1]) if n else self._phase
        ang = 2 * math.pi * phase

        # degradation: severities grow during the chunk
        sev = {f: np.clip(s.severity + s.growth_per_s * (t - t0 + 1 / fs), 0.0, c.max_severity)
               for f, s in self._faults.items()}
        for _f, s in self._faults.items():
            if s.growth_per_s:
                s.severity = float(min(max(s.severity + s.growth_per_s * dt, 0.0), c.max_severity))

        # sin(k·φ + θ) = sin(kφ)·cos θ + cos(kφ)·sin θ: three sin/cos pairs serve every harmonic term
        sin_k = [np.sin(k * ang) for k in (1, 2, 3)]
        cos_k = [np.cos(k * ang) for k in (1, 2, 3)]

        def wave(k: int, theta: float) -> FloatArray:
            return sin_k[k - 1] * math.cos(theta) + cos_k[k - 1] * math.sin(theta)

        sig = np.zeros((n, 3))
        # healthy harmonics
        for k in range(3):
            a = c.harmonics_g[k]
            for axis, gain in ((0, 1.0), (1, _Y_STIFFNESS), (2, c.axial_fraction)):
                sig[:, axis] += a * gain * wave(k + 1, float(self._theta[k, axis]))
        # imbalance: 1× radial orbit, ∝ ω²
        if self._faults[Fault.IMBALANCE].severity or self._faults[Fault.IMBALANCE].growth_per_s:
            imb = sev[Fault.IMBALANCE] * c.imbalance_g * (fr / c.shaft_hz) ** 2
            th = float(self._theta[0, 0])
            sig[:, 0] += imb * wave(1, th)
            sig[:, 1] += imb * _Y_STIFFNESS * wave(1, th - _RADIAL_PHASE_Y)
            sig[:, 2] += imb * 0.05 * wave(1, th)
        # misalignment: 2× strongly axial, 2× radial, some 1× axial
        if self._faults[Fault.MISALIGNMENT].severity or self._faults[Fault.MISALIGNMENT].growth_per_s:
            mis = sev[Fault.MISALIGNMENT] * c.misalignment_g
            th2 = float(self._theta[1, 2])
            sig[:, 2] += mis * (wave(2, th2) + 0.5 * wave(1, th2 / 2))
            sig[:, 0] += mis * 0.5 * wave(2, float(self._theta[1, 0]))
            sig[:, 1] += mis * 0.4 * wave(2, float(self._theta[1, 1]))
            sig[:, 2] += mis * 0.15 * wave(3, float(self._theta[2, 2]))
        # bearing strikes ringing the structural resonance
        sig += self._bearing(t, phase_start, phase, sev[Fault.BEARING])

        sig *= level[:, None]
        sig += rng.standard_normal((n, 3)) * c.noise_g
        sig += bias
        sig[:, 1] += c.gravity_g
        self._n += n
        return sig

    def _bearing(self, t: FloatArray, phase_start: float, phase: FloatArray, sev: FloatArray) -> FloatArray:
        """Strikes at BPFO (or BPFI, modulated at 1×), each a decaying sinusoid at the housing resonance."""
        c = self.config
        fs = c.sample_rate_hz
        n = len(t)
        out = np.zeros((n, 3))
        if n == 0:
            return out
        inner = c.bearing_defect == "inner"
        # strikes per revolution: BPFO/f_r or BPFI/f_r, a constant of the geometry
        per_rev = (c.bearing.bpfi(1.0) if inner else c.bearing.bpfo(1.0))
        strike_phase = phase * per_rev  # strikes counted along the shaft's revolutions
        start = phase_start * per_rev
        new: list[tuple[float, float]] = []
        if np.any(sev > 0) or self._ringing:
            end = float(strike_phase[-1])
            while self._next_strike <= end:
                k = self._next_strike
                i = int(np.searchsorted(strike_phase, k))
                # time of the strike: interpolate the phase between samples i-1 and i
                p0 = float(strike_phase[i - 1]) if i > 0 else start
                t_prev = float(t[i - 1]) if i > 0 else float(t[0]) - 1 / fs
                p1 = float(strike_phase[i])
                tk = t_prev + (k - p0) / max(p1 - p0, 1e-12) / fs
                s = float(sev[min(i, n - 1)])
                if s > 0:
                    amp = s * c.bearing_g
                    if inner:  # defect passes the load zone once a revolution
                        shaft_angle = 2 * math.pi * (k / per_rev)
                        amp *= 0.5 * (1 + math.cos(shaft_angle))
                    new.append((tk, amp))
                # next strike: one period on, with slip jitter (never backwards)
                self._next_strike += max(0.5, 1 + c.slip * float(self._rng.standard_normal()))
        strikes = self._ringing + new
        if not strikes:
            self._ringing = []
            return out
        alpha = c.damping * 2 * math.pi * c.resonance_hz
        wd = 2 * math.pi * c.resonance_hz * math.sqrt(1 - c.damping**2)
        span = 7.0 / alpha  # e^-7 ≈ 0.1 %: negligible after that
        t0 = float(t[0])
        resp = np.zeros(n)
        keep: list[tuple[float, float]] = []
        for tk, amp in strikes:
            i0 = max(0, math.ceil((tk - t0) * fs))
            i1 = min(n, math.ceil((tk + span - t0) * fs))
            if i1 > i0:
                tau = t[i0:i1] - tk
                resp[i0:i1] += amp * np.exp(-alpha * tau) * np.sin(wd * tau)
            if tk + span > float(t[-1]):
                keep.append((tk, amp))
        self._ringing = keep
        out[:] = resp[:, None] * _BEARING_DIRECTION[None, :]
        return out


def random_machine(rng: np.random.Generator, *, bearing_defect: str | None = None,
                   sample_rate_hz: float = 3200.0, shaft_hz: Sequence[float] = (20.0, 50.0)) -> VibrationConfig:
    """A plausible machine: running speed, healthy harmonic levels, bearing, resonance and noise drawn at random.

    Used by the training-data generator so that models learn fault signatures, not one machine."""
    lo, hi = shaft_hz
    bearing = BEARINGS[str(rng.choice(sorted(BEARINGS)))]
    h1 = float(rng.uniform(0.010, 0.035))
    return VibrationConfig(
        sample_rate_hz=sample_rate_hz,
        shaft_hz=float(rng.uniform(lo, hi)),
        harmonics_g=(h1, h1 * float(rng.uniform(0.2, 0.5)), h1 * float(rng.uniform(0.08, 0.25))),
        axial_fraction=float(rng.uniform(0.2, 0.4)),
        bearing=bearing,
        bearing_defect=bearing_defect or str(rng.choice(["outer", "inner"])),
        resonance_hz=float(rng.uniform(0.25, 0.42) * sample_rate_hz),
        damping=float(rng.uniform(0.03, 0.08)),
        imbalance_g=float(rng.uniform(0.09, 0.15)),
        misalignment_g=float(rng.uniform(0.07, 0.13)),
        bearing_g=float(rng.uniform(0.25, 0.45)),
        noise_g=float(rng.uniform(0.002, 0.006)),
    )

