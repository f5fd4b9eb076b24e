"""The capture file: a raw sensor window as CSV, what the ``capture`` command uploads and ``models/`` imports.

    body = write_capture(window, channel_names=("x", "y", "z"), meta=CaptureMeta(sample_rate_hz=3200, ...))
    cap = parse_capture(body)         # Capture(meta, channel_names, samples (n, channels) float32)

Layout (UTF-8, LF line ends; docs/protocol.md "Captures")::

    # tinyfleet-capture: 1
    # sample_rate_hz: 3200
    # label: bearing_fault
    # device: press-007
    # boot: 3
    # seq: 1234
    # model: vib-cls
    # mver: 4
    # features: vib-fft
    # captured_at: 2026-12-08T01:30:00.123Z
    x,y,z
    0.0123,1.0012,-0.0034
    ...

Comment lines ``# key: value`` first (``tinyfleet-capture`` and ``sample_rate_hz`` required, the others
optional, unknown keys kept), then one header row naming the channels, then one row per sample. Readers:
:func:`parse_capture`, or ``pandas.read_csv(path, comment="#")`` (the comment lines are skipped whole).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CAPTURE_VERSION", "MAX_CAPTURE_BYTES", "Capture", "CaptureError", "CaptureMeta", "parse_capture",
           "write_capture"]  # fmt: skip

CAPTURE_VERSION = 1
MAX_CAPTURE_BYTES = 8 * 1024 * 1024
MAX_CHANNELS = 16
_CHANNEL = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_KEY = re.compile(r"[a-z_][a-z0-9_]{0,31}")
_KNOWN_INT = ("boot", "seq", "mver")


class CaptureError(ValueError):
    """A capture body that does not follow the layout (the message names the line)."""


@dataclass(frozen=True)
class CaptureMeta:
    sample_rate_hz: float
    label: str | None = None
    device: str | None = None
    boot: int | None = None
    seq: int | None = None
    model: str | None = None
    mver: int | None = None
    features: str | None = None
    captured_at: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def items(self) -> list[tuple[str, str]]:
        out = [("tinyfleet-capture", str(CAPTURE_VERSION)), ("sample_rate_hz", _num(self.sample_rate_hz))]
        for key in ("label", "device", "boot", "seq", "model", "mver", "features", "captured_at"):
            value = getattr(self, key)
            if value is not None:
                out.append((key, str(value)))
        out += sorted(self.extra.items())
        return out


@dataclass(frozen=True)
class Capture:
    meta: CaptureMeta
    channel_names: tuple[str, ...]
    samples: np.ndarray  # (n, channels) float32


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ").strip()


def write_capture(samples: np.ndarray, *, channel_names: tuple[str, ...], meta: CaptureMeta) -> bytes:
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data.reshape(-1, 1)
    if data.ndim != 2 or data.shape[1] != len(channel_names):
        raise CaptureError(f"samples of shape {data.shape} do not match the channels {channel_names}")
    out = io.StringIO()
    for key, value in meta.items():
        out.write(f"# {key}: {_clean(value)}\n")
    out.write(",".join(channel_names) + "\n")
    np.savetxt(out, data, delimiter=",", fmt="%.7g")
    return out.getvalue().encode("utf-8")


def parse_capture(body: bytes, *, max_bytes: int = MAX_CAPTURE_BYTES) -> Capture:
    """Validate and read a capture. Raises :class:`CaptureError` naming the first problem."""
    if len(body) > max_bytes:
        raise CaptureError(f"the capture has {len(body)} bytes, the limit is {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptureError(f"the capture is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    lines = text.splitlines()
    meta: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        key, sep, value = lines[i][1:].partition(":")
        key = key.strip()
        if not sep or not (_KEY.fullmatch(key) or key == "tinyfleet-capture"):
            raise CaptureError(f"line {i + 1}: expected '# key: value'")
        meta[key] = value.strip()
        i += 1
    if meta.get("tinyfleet-capture") != str(CAPTURE_VERSION):
        raise CaptureError(f"not a tinyfleet capture: '# tinyfleet-capture: {CAPTURE_VERSION}' must come first")
    try:
        rate = float(meta.get("sample_rate_hz", ""))
    except ValueError:
        raise CaptureError("'# sample_rate_hz:' must be a number") from None
    if not (math.isfinite(rate) and rate > 0):
        raise CaptureError("'# sample_rate_hz:' must be a positive number")
    ints: dict[str, int | None] = {}
    for key in _KNOWN_INT:
        raw = meta.get(key)
        if raw is None:
            ints[key] = None
            continue
        if not raw.isdigit():
            raise CaptureError(f"'# {key}:' must be a non-negative integer")
        ints[key] = int(raw)
    if i >= len(lines):
        raise CaptureError("the header row naming the channels is missing")
    names = tuple(n.strip() for n in lines[i].split(","))
    if not 0 < len(names) <= MAX_CHANNELS or not all(_CHANNEL.fullmatch(n) for n in names):
        raise CaptureError(f"line {i + 1}: expected 1..{MAX_CHANNELS} channel names (letters, digits, _ . -)")
    rows = [line for line in lines[i + 1 :] if line.strip()]
    if not rows:
        raise CaptureError("the capture holds no samples")
    try:
        data = np.loadtxt(rows, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise CaptureError(f"the sample rows are not {len(names)} numbers each: {exc}") from exc
    if data.shape[1] != len(names):
        raise CaptureError(f"the sample rows have {data.shape[1]} values, the header names {len(names)} channels")
    if not np.all(np.isfinite(data)):
        raise CaptureError("the samples must be finite numbers")
    known = {"tinyfleet-capture", "sample_rate_hz", "label", "device", "model", "features", "captured_at", *_KNOWN_INT}
    return Capture(
        meta=CaptureMeta(
            sample_rate_hz=rate, label=meta.get("label") or None, device=meta.get("device") or None,
            boot=ints["boot"], seq=ints["seq"], model=meta.get("model") or None, mver=ints["mver"],
            features=meta.get("features") or None, captured_at=meta.get("captured_at") or None,
            extra={k: v for k, v in meta.items() if k not in known},
        ),
        channel_names=names,
        samples=data.astype(np.float32),
    )  # fmt: skip
