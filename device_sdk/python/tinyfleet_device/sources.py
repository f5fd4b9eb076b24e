"""Sensor sources by name: ``random``, ``sim``, ``wav:PATH``.

    source = open_source("sim", pipeline=FEATURES["vib-fft"], seed=1)
    window = source.read(1024)         # (1024, 3) float32 for 3-axis vibration, (n,) for audio
    source.inject("bearing_fault", 1.0)

* ``random`` — Gaussian noise (seeded) with the channels and rate the feature pipeline expects; the quickest
  way to run any model (``raw`` features: the model's input is the noise itself).
* ``sim`` — the simulator that matches the feature pipeline: 3-axis vibration for ``vib-fft``
  (:mod:`tinyfleet_device.sensors.vibration`), machine sound for ``ad-logmel``
  (:mod:`tinyfleet_device.sensors.sound`), synthesized keywords for ``kws-mfcc``
  (:mod:`tinyfleet_device.sensors.keyword`, espeak-ng). Faults are injected into it on command.
* ``wav:PATH`` — a WAV file, mono, resampled to the pipeline's rate, looped.

Every source has ``sample_rate_hz``, ``channels``, ``channel_names`` (the CSV columns of a capture) and
``read(n)``; ``inject`` raises :class:`SourceError` for a source without faults.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .errors import SourceError
from .features import FeaturePipeline

__all__ = ["SOURCE_KINDS", "SensorSource", "Source", "open_source"]

SOURCE_KINDS = ("random", "sim", "wav:PATH")
DEFAULT_RANDOM_RATE_HZ = 1000.0


class Source(Protocol):
    sample_rate_hz: float
    channels: int
    channel_names: tuple[str, ...]
    name: str

    def read(self, n: int) -> np.ndarray: ...

    def inject(self, fault: str, severity: float = 1.0) -> None: ...

    @property
    def faults(self) -> dict[str, float]: ...


class SensorSource:
    """A source around a simulator or reader object with ``read(n)`` (and maybe ``inject`` / ``faults``)."""

    def __init__(
        self,
        name: str,
        reader: Any,
        *,
        sample_rate_hz: float,
        channel_names: tuple[str, ...],
        fault_errors: tuple[type[Exception], ...] = (ValueError,),
    ) -> None:
        self.name = name
        self._reader = reader
        self.sample_rate_hz = float(sample_rate_hz)
        self.channel_names = channel_names
        self.channels = len(channel_names)
        self._fault_errors = fault_errors

    def read(self, n: int) -> np.ndarray:
        try:
            window = np.asarray(self._reader.read(int(n)), dtype=np.float32)
        except (ValueError, EOFError, OSError) as exc:
            raise SourceError(f"source {self.name}: cannot read {n} samples: {exc}") from exc
        return window

    def inject(self, fault: str, severity: float = 1.0) -> None:
        inject: Callable[..., None] | None = getattr(self._reader, "inject", None)
        if inject is None:
            raise SourceError(f"source {self.name} has no faults to inject")
        try:
            inject(fault, severity)
        except self._fault_errors as exc:
            raise SourceError(str(exc)) from exc

    @property
    def faults(self) -> dict[str, float]:
        faults = getattr(self._reader, "faults", None)
        if not faults:
            return {}
        return {str(k): float(v) for k, v in dict(faults).items()}


class _Noise:
    """Seeded Gaussian noise, ``channels`` columns (a 1-D window for one channel)."""

    def __init__(self, channels: int, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._channels = channels

    def read(self, n: int) -> np.ndarray:
        shape: tuple[int, ...] = (n,) if self._channels == 1 else (n, self._channels)
        return self._rng.standard_normal(shape).astype(np.float32)


def _module(name: str, what: str) -> Any:
    try:
        return importlib.import_module(f"tinyfleet_device.sensors.{name}")
    except ImportError as exc:
        raise SourceError(f"the {what} source needs tinyfleet_device.sensors.{name}, which is not available") from exc


def _sim(pipeline: FeaturePipeline, seed: int) -> SensorSource:
    name = pipeline.name
    channels = pipeline.channels or 1
    if name.startswith("vib") or channels == 3:
        vib = _module("vibration", "vibration simulator")
        sim = vib.VibrationSimulator(seed=seed)
        return SensorSource(
            "sim:vibration", sim, sample_rate_hz=sim.sample_rate_hz, channel_names=("x", "y", "z"),
            fault_errors=(vib.VibrationError,),
        )  # fmt: skip
    rate = int(pipeline.sample_rate_hz or 16000)
    if name.startswith("kws"):
        kw = _module("keyword", "keyword")
        utterances = kw.UtteranceSource(seed=seed, sample_rate_hz=rate)
        return SensorSource(
            "sim:keyword", utterances, sample_rate_hz=rate, channel_names=("pcm",), fault_errors=(kw.KeywordAudioError,)
        )
    if name.startswith("ad") or channels == 1:
        snd = _module("sound", "machine sound simulator")
        machine = snd.MachineSoundSimulator(seed=seed, sample_rate_hz=rate)
        return SensorSource(
            "sim:sound", machine, sample_rate_hz=rate, channel_names=("pcm",), fault_errors=(snd.MachineSoundError,)
        )
    raise SourceError(f"no simulator matches the feature pipeline {name!r}")


def _wav(path: str, pipeline: FeaturePipeline) -> SensorSource:
    kw = _module("keyword", "wav")
    rate = int(pipeline.sample_rate_hz or 16000)
    try:
        reader = kw.WavSource(path, sample_rate_hz=rate)
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read the WAV file {path}: {exc}") from exc
    return SensorSource(f"wav:{path}", reader, sample_rate_hz=reader.sample_rate_hz, channel_names=("pcm",))


def open_source(spec: str, *, pipeline: FeaturePipeline, seed: int = 0) -> Source:
    """The source named by ``spec`` (``random``, ``sim`` or ``wav:PATH``) for ``pipeline``'s windows."""
    if spec == "random":
        channels = pipeline.channels or 1
        names = ("x", "y", "z") if channels == 3 else tuple(f"ch{i}" for i in range(channels))
        rate = pipeline.sample_rate_hz or DEFAULT_RANDOM_RATE_HZ
        return SensorSource("random", _Noise(channels, seed), sample_rate_hz=rate, channel_names=names)
    if spec == "sim":
        return _sim(pipeline, seed)
    if spec.startswith("wav:") and len(spec) > 4:
        return _wav(spec[4:], pipeline)
    raise SourceError(f"unknown source {spec!r} (expected one of {', '.join(SOURCE_KINDS)})")
