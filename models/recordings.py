"""Recorded vibration windows — CSV or WAV files, including the raw windows devices upload with ``capture`` —
turned into ``vib-fft`` rows for the dataset.

**Captures** (a file whose first line is ``# tinyfleet-capture: 1``: what ``POST /api/v1/devices/{id}/captures``
stores, docs/protocol.md "Captures") are read with the device's own :func:`tinyfleet_device.capture.parse_capture`::

    # tinyfleet-capture: 1
    # sample_rate_hz: 3200
    # label: bearing_fault
    # device: press-007
    x_g,y_g,z_g
    0.0123,1.0012,-0.0034

The axes are the channels named ``x``/``y``/``z`` or ``x_g``/``y_g``/``z_g`` (g), or ``x_ms2``… (m/s², converted).

**Other CSV files**: optional ``# key: value`` lines (``sample_rate_hz``, ``label``, ``units`` = ``g`` or
``m/s2``), a header naming the columns ``x``, ``y``, ``z`` in any order and optionally ``t`` (seconds: gives the
rate when ``sample_rate_hz`` is absent).

**WAV**: 3 channels (x, y, z), float samples in g, or integer PCM scaled so that full scale is ``full_scale_g``
(default ±2 g, the range most MEMS accelerometers are set to).

The label is the ``label`` metadata, else the parent directory's name (``recordings/imbalance/motor3.csv``); it
must be one of the classifier's labels. A file is cut into non-overlapping windows of ``window_samples`` (a
shorter tail is dropped); every window of one file goes to the same split (by a hash of the file's name), so a
recording never straddles two splits.
"""

from __future__ import annotations

import csv
import io
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.dataset import LABELS, Dataset, DatasetError, split_of
from tinyfleet_device.capture import CaptureError, CaptureMeta, parse_capture, write_capture
from tinyfleet_device.features.vibration import WINDOW_SAMPLES, VibrationFeatureError, vibration_features

__all__ = ["Recording", "RecordingError", "load_recording", "load_recordings", "write_capture_csv"]

_G = 9.80665


class RecordingError(DatasetError):
    """A recording that cannot be read (the message names the file and what is wrong)."""


@dataclass(slots=True)
class Recording:
    path: Path
    samples: NDArray[np.float64]  # (n, 3) in g
    sample_rate_hz: float
    label: str
    metadata: dict[str, str] = field(default_factory=dict)


def _label(path: Path, given: str | None) -> str:
    label = given or path.parent.name
    if label not in LABELS:
        raise RecordingError(
            f"{path}: no usable label ({label!r}); give '# label: …' or put it in a directory named after one of "
            f"{', '.join(LABELS)}")
    return label


_AXIS_UNITS = {"": 1.0, "_g": 1.0, "_ms2": 1 / _G, "_m_s2": 1 / _G}


def _read_capture(path: Path, body: bytes) -> Recording:
    try:
        cap = parse_capture(body)
    except CaptureError as exc:
        raise RecordingError(f"{path}: {exc}") from exc
    names = list(cap.channel_names)
    columns = []
    for axis in ("x", "y", "z"):
        found = [(names.index(axis + suffix), factor) for suffix, factor in _AXIS_UNITS.items()
                 if axis + suffix in names]
        if not found:
            raise RecordingError(f"{path}: the capture's channels {names} have no {axis!r} axis "
                                 f"({', '.join(axis + s for s in _AXIS_UNITS)})")
        index, factor = found[0]
        columns.append(np.asarray(cap.samples[:, index], dtype=np.float64) * factor)
    meta = {k: str(v) for k, v in cap.meta.items()}
    return Recording(path, np.stack(columns, axis=1), float(cap.meta.sample_rate_hz),
                     _label(path, cap.meta.label), meta)


def _read_csv(path: Path) -> Recording:
    try:
        body = path.read_bytes()
        if body.startswith(b"# tinyfleet-capture"):
            return _read_capture(path, body)
        text = body.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: cannot read: {exc}") from exc
    meta: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        entry = lines[i].lstrip("#").strip()
        if ":" in entry:
            key, value = entry.split(":", 1)
            meta[key.strip().lower()] = value.strip()
        i += 1
    rows = list(csv.reader(io.StringIO("\n".join(lines[i:]))))
    if not rows:
        raise RecordingError(f"{path}: no column header (expected e.g. 't,x,y,z')")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("x", "y", "z") if c not in header]
    if missing:
        raise RecordingError(f"{path}: the header {rows[0]} lacks column(s) {', '.join(missing)}")
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=np.float64)
    except ValueError as exc:
        raise RecordingError(f"{path}: a value is not a number ({exc})") from exc
    if data.ndim != 2 or data.shape[1] != len(header):
        raise RecordingError(f"{path}: rows do not all have {len(header)} values")
    xyz = data[:, [header.index(c) for c in ("x", "y", "z")]]
    units = meta.get("units", "g").lower()
    if units in ("m/s2", "m/s^2", "m/s²"):
        xyz = xyz / _G
    elif units != "g":
        raise RecordingError(f"{path}: unknown units {units!r} (g or m/s2)")
    if "sample_rate_hz" in meta:
        try:
            rate = float(meta["sample_rate_hz"])
        except ValueError as exc:
            raise RecordingError(f"{path}: sample_rate_hz {meta['sample_rate_hz']!r} is not a number") from exc
    elif "t" in header and len(data) > 1:
        dt = float(np.median(np.diff(data[:, header.index("t")])))
        rate = 1.0 / dt if dt > 0 else 0.0
    else:
        raise RecordingError(f"{path}: no sample rate ('# sample_rate_hz: …' or a 't' column)")
    if not rate > 0:
        raise RecordingError(f"{path}: the sample rate must be > 0")
    return Recording(path, xyz, rate, _label(path, meta.get("label")), meta)


def _read_wav(path: Path, full_scale_g: float) -> Recording:
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
    except (OSError, wave.Error, EOFError) as exc:
        raise RecordingError(f"{path}: not a readable WAV file ({exc})") from exc
    if channels != 3:
        raise RecordingError(f"{path}: {channels} channel(s); a vibration recording has 3 (x, y, z)")
    if width == 2:
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0 * full_scale_g
    elif width == 4:
        pcm = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2**31 * full_scale_g
    else:
        raise RecordingError(f"{path}: {8 * width}-bit samples are not supported (16- or 32-bit PCM)")
    return Recording(path, pcm.reshape(-1, 3), float(rate), _label(path, None), {})


def load_recording(path: Path, *, full_scale_g: float = 2.0) -> Recording:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".wav":
        return _read_wav(path, full_scale_g)
    raise RecordingError(f"{path}: unknown recording type (.csv or .wav)")


def load_recordings(paths: Iterable[Path], *, window_samples: int = WINDOW_SAMPLES,
                    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> Dataset:
    """Every ``.csv``/``.wav`` under ``paths`` (files or directories) as dataset rows; empty when there are none."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in (".csv", ".wav"))
        elif p.exists():
            files.append(p)
        else:
            raise RecordingError(f"{p}: no such file or directory")
    xs: list[NDArray[np.float32]] = []
    ys: list[int] = []
    splits: list[str] = []
    sources: list[str] = []
    for f in files:
        rec = load_recording(f)
        n = len(rec.samples) // window_samples
        if n == 0:
            raise RecordingError(f"{f}: {len(rec.samples)} samples, shorter than one {window_samples}-sample window")
        split = split_of(f.name, split_fractions)
        for k in range(n):
            try:
                xs.append(vibration_features(rec.samples[k * window_samples : (k + 1) * window_samples],
                                             rec.sample_rate_hz))
            except VibrationFeatureError as exc:
                raise RecordingError(f"{f}: window {k}: {exc}") from exc
            ys.append(LABELS.index(rec.label))
            splits.append(split)
            sources.append(f"file:{f.name}")
    if not xs:
        return Dataset(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, "<U5"), np.zeros(0, "<U8"),
                       np.zeros(0))
    return Dataset(np.stack(xs), np.asarray(ys, np.int64), np.asarray(splits), np.asarray(sources),
                   np.full(len(ys), np.nan), {"recordings": len(files)})


def write_capture_csv(path: Path, samples: np.ndarray, sample_rate_hz: float, *, label: str | None = None,
                      device: str | None = None) -> None:
    """Write ``samples`` ((n, 3) in g) as a capture (the device's own writer)."""
    meta = CaptureMeta(sample_rate_hz=sample_rate_hz, label=label, device=device, features="vib-fft")
    path.write_bytes(write_capture(np.asarray(samples, dtype=np.float32), channel_names=("x_g", "y_g", "z_g"),
                                   meta=meta))
