"""Datasets of ``vib-fft`` feature windows: generated from the vibration simulator, imported from recordings.

Generated data: ``n_machines`` random machines (:func:`tinyfleet_device.sensors.vibration.random_machine`:
speed 20–50 Hz, bearing, inner/outer defect, resonance, levels, noise). For each machine and each class a
simulator runs with that fault and yields ``windows_per_class`` consecutive 1,024-sample windows; every
``reinject_every`` windows the severity is drawn again (uniform in ``severity_range``), so one machine shows
a range of severities. The split is **by machine** (train / validation / test machines are disjoint), so the
test measures how the models do on machines they have never seen.

Recorded windows (:mod:`models.recordings`) join the split of their file (by a hash of its name), so windows
of one recording never straddle two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tinyfleet_device.features.vibration import SAMPLE_RATE_HZ, WINDOW_SAMPLES, vibration_features
from tinyfleet_device.sensors.vibration import Fault, VibrationSimulator, random_machine

__all__ = ["LABELS", "SPLITS", "Dataset", "DatasetError", "GenerationSpec", "generate", "merge"]

LABELS: tuple[str, ...] = (Fault.NORMAL.value, Fault.IMBALANCE.value, Fault.MISALIGNMENT.value, Fault.BEARING.value)
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """A dataset that cannot be built or read."""


@dataclass(frozen=True, slots=True)
class GenerationSpec:
    n_machines: int = 80
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    windows_per_class: int = 40
    reinject_every: int = 5
    severity_range: tuple[float, float] = (0.25, 1.5)
    sample_rate_hz: float = SAMPLE_RATE_HZ
    window_samples: int = WINDOW_SAMPLES
    seed: int = 20261208

    def as_dict(self) -> dict[str, object]:
        return {"n_machines": self.n_machines, "split_fractions": list(self.split_fractions),
                "windows_per_class": self.windows_per_class, "reinject_every": self.reinject_every,
                "severity_range": list(self.severity_range), "sample_rate_hz": self.sample_rate_hz,
                "window_samples": self.window_samples, "seed": self.seed}


@dataclass(slots=True)
class Dataset:
    """Feature rows ``x`` (float32, n × 105), labels ``y`` (index into LABELS), and per row its split, source and
    severity (0 for normal; NaN when unknown: recordings)."""

    x: NDArray[np.float32]
    y: NDArray[np.int64]
    split: NDArray[np.str_]
    source: NDArray[np.str_]
    severity: NDArray[np.float64]
    info: dict[str, object] = field(default_factory=dict)

    def part(self, name: str) -> Dataset:
        if name not in SPLITS:
            raise DatasetError(f"unknown split {name!r}")
        m = self.split == name
        return Dataset(self.x[m], self.y[m], self.split[m], self.source[m], self.severity[m], self.info)

    def __len__(self) -> int:
        return len(self.y)

    def counts(self) -> dict[str, dict[str, int]]:
        return {s: {label: int(np.sum((self.split == s) & (self.y == i))) for i, label in enumerate(LABELS)}
                for s in SPLITS}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=self.x, y=self.y, split=self.split, source=self.source, severity=self.severity)

    @classmethod
    def load(cls, path: Path) -> Dataset:
        try:
            with np.load(path) as z:
                return cls(z["x"], z["y"], z["split"], z["source"], z["severity"])
        except (OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"cannot read dataset {path}: {exc}") from exc


def split_of(key: str, fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> str:
    """A stable split for a recording, from a hash of ``key``."""
    u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def _machine_splits(spec: GenerationSpec) -> list[str]:
    n = spec.n_machines
    n_val = max(1, round(n * spec.split_fractions[1]))
    n_test = max(1, round(n * spec.split_fractions[2]))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DatasetError(f"{n} machines are too few for three splits")
    return ["train"] * n_train + ["val"] * n_val + ["test"] * n_test


def generate(spec: GenerationSpec) -> Dataset:
    """Simulated windows for every machine × class; deterministic in ``spec`` (seed included)."""
    rng = np.random.default_rng(spec.seed)
    xs: list[NDArray[np.float32]] = []
    ys: list[int] = []
    splits: list[str] = []
    sources: list[str] = []
    sevs: list[float] = []
    for m, split in enumerate(_machine_splits(spec)):
        config = random_machine(rng, sample_rate_hz=spec.sample_rate_hz)
        for label_index, label in enumerate(LABELS):
            sim = VibrationSimulator(config, seed=int(rng.integers(2**31)))
            sim.read(int(rng.integers(0, spec.window_samples)))  # random start phase of the stream
            severity = 0.0
            for w in range(spec.windows_per_class):
                if label != Fault.NORMAL and w % spec.reinject_every == 0:
                    severity = float(rng.uniform(*spec.severity_range))
                    sim.inject(label, severity)
                window = sim.read(spec.window_samples)
                xs.append(vibration_features(window, spec.sample_rate_hz))
                ys.append(label_index)
                splits.append(split)
                sources.append(f"sim:machine-{m:03d}")
                sevs.append(severity)
    return Dataset(np.stack(xs), np.asarray(ys, dtype=np.int64), np.asarray(splits), np.asarray(sources),
                   np.asarray(sevs, dtype=np.float64), {"generated": spec.as_dict()})


def merge(parts: Iterable[Dataset]) -> Dataset:
    items = [p for p in parts if len(p)]
    if not items:
        raise DatasetError("no data")
    info: dict[str, object] = {}
    for p in items:
        info.update(p.info)
    return Dataset(np.concatenate([p.x for p in items]), np.concatenate([p.y for p in items]),
                   np.concatenate([p.split for p in items]), np.concatenate([p.source for p in items]),
                   np.concatenate([p.severity for p in items]), info)
