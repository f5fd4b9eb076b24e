"""Machine-sound simulator: the microphone of a small geared DC-motor machine (like ToyADMOS's toy car).

The shared MLCommons Tiny anomaly model (``ad01``) is an autoencoder trained on *normal* ToyADMOS "ToyCar"
recordings: a toy car's motor and gearbox driving it on a roller, recorded at 16 kHz. It flags sound it cannot
reconstruct. This simulator produces a continuous stream with the same ingredients, each from a physical cause:

* **supply hum** — mains-powered drive electronics and magnetics vibrate at twice the supply frequency
  (magnetostriction: the force goes with the square of the current) and its harmonics: 100, 200, 300 Hz on 50 Hz;
* **rotation harmonics** — the motor shaft (``shaft_hz``, drifting slowly by ±``speed_wander`` as the load changes)
  gives 1×, 2×, 3× components from residual imbalance and misalignment, and the commutator adds torque ripple at
  ``commutator_segments`` × shaft;
* **gear mesh** — the pinion's teeth meet the gear ``gear_teeth`` times per revolution: a tone at the gear-mesh
  frequency (GMF = teeth × shaft) and its second harmonic, slightly amplitude-modulated by the shaft (eccentricity);
* **broadband noise shaped like a machine's** — rolling / wheel-on-roller noise (white noise through a low-pass:
  most energy below ~600 Hz), brush noise (white noise, amplitude-modulated at the commutation rate, exciting the
  housing's structural resonance near ``housing_resonance_hz``), and a faint white floor (microphone, room).

Faults (:meth:`MachineSoundSimulator.inject`, severity 0..1, several at once possible):

* ``bearing`` — an outer-race defect: each rolling element passing it hits it, at BPFO = ``bpfo_order`` × shaft;
  every hit is a short impulse (random amplitude, a little timing jitter) ringing the high-frequency structural
  resonance near ``bearing_resonance_hz``: a rattle;
* ``squeal`` — dry friction (a rubbing part, a failing lubricant) goes into stick-slip oscillation: an intermittent
  narrow-band tone around ``squeal_hz`` with its 2nd harmonic, wobbling in frequency, coming and going in bursts;
* ``gear`` — a worn / chipped pinion tooth: the mesh is modulated once per revolution (sidebands at GMF ± k ×
  shaft grow) and the chipped tooth knocks once per revolution (an impulse ringing the gear-body resonance);
* ``imbalance`` — changed rotation harmonics: mass loss or a bent shaft grows 1× (and 2×) by up to ~20 dB, and the
  shaft-rate modulation of the rolling noise deepens.

The levels were set so that the normal sound's log-mel spectrum lies near what ``ad01`` reconstructs well (the
model's own "normal" ToyCar spectrum: strong below ~500 Hz, falling ~25 dB to 2 kHz, a resonance near 3.3 kHz):
its anomaly score on normal sound is of the order of real ToyCar normal clips (about 10), and faults raise it.
Everything is deterministic given ``seed`` and the sequence of read sizes; tones keep their phase and filters their
state from one read to the next, so block boundaries leave no clicks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import scipy.signal

__all__ = ["FAULT_ALIASES", "MachineFault", "MachineSoundConfig", "MachineSoundError", "MachineSoundSimulator"]


class MachineSoundError(ValueError):
    """Bad simulator configuration, fault name, severity or read size."""


class MachineFault(StrEnum):
    NORMAL = "normal"
    BEARING = "bearing"
    SQUEAL = "squeal"
    GEAR = "gear"
    IMBALANCE = "imbalance"


#: the vibration simulator's names for the same faults, so one ``inject`` command works for either sensor
FAULT_ALIASES: dict[str, MachineFault] = {"bearing_fault": MachineFault.BEARING}


@dataclass(frozen=True, slots=True)
class MachineSoundConfig:
    supply_hz: float = 50.0
    shaft_hz: float = 130.0  # 7,800 rpm: a small DC motor
    speed_wander: float = 0.01  # relative, slow (load changes)
    commutator_segments: int = 6  # 3-pole motor: 6 commutations per revolution
    gear_teeth: int = 8  # pinion: GMF = 1,040 Hz at 130 Hz
    bpfo_order: float = 3.58  # ball-pass frequency, outer race, per shaft revolution (8-ball bearing)
    housing_resonance_hz: float = 3300.0
    bearing_resonance_hz: float = 5200.0
    gear_resonance_hz: float = 1250.0
    squeal_hz: float = 2150.0
    level: float = 1.0  # overall gain (1.0 = the calibrated level)

    def validate(self, sample_rate_hz: int) -> None:
        nyquist = sample_rate_hz / 2.0
        for name in ("housing_resonance_hz", "bearing_resonance_hz", "gear_resonance_hz", "squeal_hz"):
            value = getattr(self, name)
            if not 0.0 < value < 0.9 * nyquist:
                raise MachineSoundError(f"{name} = {value} Hz must lie between 0 and {0.9 * nyquist:.0f} Hz")
        if not 1.0 <= self.shaft_hz <= 200.0:
            raise MachineSoundError(f"shaft_hz = {self.shaft_hz} must lie between 1 and 200 Hz")
        if self.gear_teeth * self.shaft_hz * 2 * (1 + 4 * self.speed_wander) >= nyquist:
            raise MachineSoundError("the gear-mesh 2nd harmonic must stay below the Nyquist frequency")
        if not 0.0 <= self.speed_wander < 0.2:
            raise MachineSoundError("speed_wander must lie in [0, 0.2)")
        if self.supply_hz <= 0 or self.level <= 0 or self.commutator_segments < 1 or self.bpfo_order <= 0:
            raise MachineSoundError("supply_hz, level, commutator_segments and bpfo_order must be positive")


FloatArray = npt.NDArray[np.float64]


class _Filter:
    """An IIR filter (second-order sections) whose state carries over between blocks (so block boundaries are
    inaudible)."""

    def __init__(self, sos: FloatArray) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self.zi = np.zeros((self.sos.shape[0], 2))

    def __call__(self, x: FloatArray) -> FloatArray:
        y, self.zi = scipy.signal.sosfilt(self.sos, x, zi=self.zi)
        return np.asarray(y, dtype=np.float64)


def _resonator(freq_hz: float, q: float, fs: int) -> _Filter:
    b, a = scipy.signal.iirpeak(freq_hz, q, fs=fs)
    return _Filter(scipy.signal.tf2sos(b, a))


def _butter(cutoff_hz: float, fs: int, *, order: int, btype: str) -> _Filter:
    return _Filter(scipy.signal.butter(order, cutoff_hz, btype=btype, fs=fs, output="sos"))


class MachineSoundSimulator:
    """A continuous machine sound at ``sample_rate_hz`` (16 kHz for ``ad01``), float32 in [-1, 1]."""

    MAX_READ = 16_000 * 60

    def __init__(
        self, config: MachineSoundConfig | None = None, *, seed: int = 0, sample_rate_hz: int = 16000
    ) -> None:
        self.config = config or MachineSoundConfig()
        if sample_rate_hz < 8000:
            raise MachineSoundError(f"sample_rate_hz must be at least 8000, got {sample_rate_hz}")
        self.config.validate(sample_rate_hz)
        self.sample_rate_hz = int(sample_rate_hz)
        self._rng = np.random.default_rng(seed)
        self._faults: dict[MachineFault, float] = {}
        fs = self.sample_rate_hz
        cfg = self.config
        # per-unit variation: no two machines sound exactly alike
        self._unit_gain = float(self._rng.uniform(0.9, 1.1))
        self._harm_phase = self._rng.uniform(0, 2 * np.pi, 8)
        self._sample = 0  # samples produced so far (time of the next sample)
        self._shaft_phase = 0.0  # radians of shaft rotation
        self._bpfo_phase = float(self._rng.uniform(0, 1))  # in ball passes
        self._squeal_phase = 0.0
        self._wander = _butter(0.3, fs, order=1, btype="low")  # slow load changes
        impulse = np.zeros(20 * fs)
        impulse[0] = 1.0
        self._wander_std = float(np.sqrt(np.sum(_Filter(self._wander.sos)(impulse) ** 2)))
        self._rolling = _butter(600.0, fs, order=2, btype="low")
        # the recording chain's steep high-pass (as in the ToyCar recordings: almost nothing below ~50 Hz)
        self._highpass = _butter(70.0, fs, order=8, btype="high")
        self._housing = _resonator(cfg.housing_resonance_hz, 3.0, fs)
        self._bearing_ring = _resonator(cfg.bearing_resonance_hz, 12.0, fs)
        self._gear_ring = _resonator(cfg.gear_resonance_hz, 10.0, fs)

    # ------------------------------------------------------------------------------------------ faults

    @property
    def faults(self) -> dict[str, float]:
        """Active faults and their severities (empty when normal)."""
        return {f.value: s for f, s in self._faults.items()}

    def inject(self, fault: str, severity: float = 1.0) -> None:
        """Start (or change, or with severity 0 stop) a fault; ``"normal"`` clears all faults.
        ``"bearing_fault"`` (the vibration simulator's name) is taken for ``"bearing"``."""
        try:
            kind = FAULT_ALIASES.get(fault) or MachineFault(fault)
        except ValueError as exc:
            names = ", ".join(f.value for f in MachineFault)
            raise MachineSoundError(f"unknown machine fault {fault!r} (known: {names})") from exc
        if not (isinstance(severity, int | float) and math.isfinite(severity) and 0.0 <= severity <= 1.0):
            raise MachineSoundError(f"severity must be a number in [0, 1], got {severity!r}")
        if kind is MachineFault.NORMAL:
            self._faults.clear()
        elif severity == 0.0:
            self._faults.pop(kind, None)
        else:
            self._faults[kind] = float(severity)

    # ------------------------------------------------------------------------------------------ sound

    def read(self, n: int) -> npt.NDArray[np.float32]:
        """The next ``n`` samples of the stream."""
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= self.MAX_READ:
            raise MachineSoundError(f"read size must be an int in 1..{self.MAX_READ}, got {n!r}")
        cfg, fs, rng = self.config, self.sample_rate_hz, self._rng
        t = (self._sample + np.arange(n)) / fs
        sev = self._faults.get

        # shaft speed with slow wander: low-passed noise, scaled so its std is speed_wander
        wander = self._wander(rng.standard_normal(n)) * (cfg.speed_wander / self._wander_std)
        shaft_hz = cfg.shaft_hz * (1.0 + np.clip(wander, -4 * cfg.speed_wander, 4 * cfg.speed_wander))
        dphi = 2 * np.pi * shaft_hz / fs
        phase_after = self._shaft_phase + np.cumsum(dphi)
        phi = phase_after - dphi  # shaft angle at each sample
        turns = np.flatnonzero(np.diff(np.floor(np.concatenate(([self._shaft_phase], phase_after)) / (2 * np.pi))))
        self._shaft_phase = float(phase_after[-1] % (2 * np.pi))
        ph = self._harm_phase

        # supply hum at 2x supply and harmonics
        hum_f = 2 * cfg.supply_hz
        x = 0.010 * np.sin(2 * np.pi * hum_f * t + ph[0]) + 0.004 * np.sin(2 * np.pi * 2 * hum_f * t + ph[1])
        x += 0.002 * np.sin(2 * np.pi * 3 * hum_f * t + ph[2])

        # rotation harmonics (imbalance grows 1x, and 2x)
        imb = sev(MachineFault.IMBALANCE, 0.0)
        x += 0.012 * (1 + 9 * imb) * np.sin(phi + ph[3])
        x += 0.006 * (1 + 4 * imb) * np.sin(2 * phi + ph[4])
        x += 0.003 * np.sin(3 * phi + ph[5])
        x += 0.004 * np.sin(cfg.commutator_segments * phi + ph[6])

        # gear mesh, modulated once per revolution (worn tooth deepens it -> sidebands)
        gear = sev(MachineFault.GEAR, 0.0)
        depth = 0.08 + 0.8 * gear
        mod = 1 + depth * np.cos(phi) + 0.5 * depth * np.cos(2 * phi)
        x += 0.003 * (1 + 2 * gear) * mod * np.sin(cfg.gear_teeth * phi + ph[7])
        x += 0.0012 * (1 + 2 * gear) * mod * np.sin(2 * cfg.gear_teeth * phi)

        # broadband: rolling noise (low-pass), brush noise ringing the housing, white floor
        rolling_am = 1 + (0.1 + 0.6 * imb) * np.sin(phi)
        x += 0.060 * rolling_am * self._rolling(rng.standard_normal(n))
        brush_am = 1 + 0.5 * np.sin(cfg.commutator_segments * phi)
        x += 0.010 * self._housing(brush_am * rng.standard_normal(n))
        x += 0.0015 * rng.standard_normal(n)

        # bearing: impulses at BPFO ringing a high structural resonance
        bear = sev(MachineFault.BEARING, 0.0)
        passes = self._bpfo_phase + np.cumsum(dphi) / (2 * np.pi) * cfg.bpfo_order
        hits = np.flatnonzero(np.diff(np.floor(np.concatenate(([self._bpfo_phase], passes)))))
        self._bpfo_phase = float(passes[-1] % 1.0)
        pulses = np.zeros(n)
        if bear > 0 and hits.size:
            jitter = rng.integers(-8, 9, hits.size)
            pulses[np.clip(hits + jitter, 0, n - 1)] = rng.uniform(0.5, 1.0, hits.size) * (1.2 * bear)
        x += self._bearing_ring(pulses)

        # gear: the chipped tooth knocks once per revolution, ringing the gear body
        knocks = np.zeros(n)
        if gear > 0 and turns.size:
            knocks[turns] = 1.5 * gear * rng.uniform(0.7, 1.0, turns.size)
        x += self._gear_ring(knocks)

        # squeal: intermittent stick-slip tone with frequency wobble
        sq = sev(MachineFault.SQUEAL, 0.0)
        f_sq = cfg.squeal_hz * (1 + 0.015 * np.sin(2 * np.pi * 3.1 * t)) * (1 + 0.5 * wander)
        sq_phase = self._squeal_phase + np.cumsum(2 * np.pi * f_sq / fs)
        self._squeal_phase = float(sq_phase[-1] % (2 * np.pi))
        if sq > 0:
            burst = np.clip(np.sin(2 * np.pi * 0.45 * t) + 0.6, 0.0, 1.0) ** 2
            x += 0.05 * sq * burst * (np.sin(sq_phase) + 0.35 * np.sin(2 * sq_phase))

        self._sample += n
        out = self._highpass(x) * (self._unit_gain * cfg.level)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

