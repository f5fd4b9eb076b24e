"""Health telemetry (topic ``tf/v1/{device}/tel``): one map per message, CBOR integer keys or JSON names."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from . import _codec
from ._checks import (
    FieldSpec,
    check_extras,
    describe,
    int_check,
    ts_check,
    uint_check,
    validate_record,
    version_check,
)
from .errors import ErrorCode, WireError
from .limits import DEFAULT_LIMITS, I64_MAX, U16, U32, Limits

__all__ = ["TELEMETRY_FIELDS", "Telemetry", "decode_telemetry", "encode_telemetry"]


class Telemetry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Device health. Every field but ``v`` is optional: a device sends what it has."""

    v: int = 1
    ts: int | None = None
    uptime_s: int | None = None
    boot: int | None = None
    battery_pct: int | None = None
    battery_mv: int | None = None
    rssi_dbm: int | None = None
    heap_free: int | None = None
    arena_free: int | None = None
    infer_count: int | None = None
    lat_avg_us: int | None = None
    lat_max_us: int | None = None
    dropped: int | None = None
    x: dict[str, Any] | None = None


_X = 13
_SPECS = (
    FieldSpec(0, "v", version_check, True),
    FieldSpec(1, "ts", ts_check),
    FieldSpec(2, "uptime_s", uint_check(U32, "uint32")),
    FieldSpec(3, "boot", uint_check(U32, "uint32")),
    FieldSpec(4, "battery_pct", uint_check(100, "percentage")),
    FieldSpec(5, "battery_mv", uint_check(U16, "uint16")),
    FieldSpec(6, "rssi_dbm", int_check(-128, 127)),
    FieldSpec(7, "heap_free", uint_check(U32, "uint32")),
    FieldSpec(8, "arena_free", uint_check(U32, "uint32")),
    FieldSpec(9, "infer_count", uint_check(I64_MAX, "uint63")),
    FieldSpec(10, "lat_avg_us", uint_check(U32, "uint32")),
    FieldSpec(11, "lat_max_us", uint_check(U32, "uint32")),
    FieldSpec(12, "dropped", uint_check(U32, "uint32")),
    FieldSpec(_X, "x", version_check),  # checked by check_extras
)
#: CBOR key -> JSON name
TELEMETRY_FIELDS: dict[int, str] = {s.key: s.name for s in _SPECS}


def decode_telemetry(
    payload: bytes, *, strict: bool = True, now_ms: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> Telemetry:
    """Decode and validate one telemetry payload; raises WireError."""
    obj = _codec.load_payload(payload, limits.max_telemetry_bytes)
    if type(obj) is not dict:
        raise WireError(ErrorCode.NOT_AN_EVENT, f"telemetry must be a map, got {describe(obj)}")
    json_form = _codec.is_json(payload)
    values, unknown = validate_record(obj, _SPECS, json_form, strict, now_ms, limits, raw_keys=frozenset({_X}))
    x = check_extras("x", values.pop("x", None), limits, unknown)
    return Telemetry(**values, x=x)


def encode_telemetry(tel: Telemetry, *, fmt: Literal["cbor", "json"] = "cbor") -> bytes:
    """Canonical encoding: integer keys ascending, shortest integers, null fields omitted."""
    d = {name: getattr(tel, name) for name in TELEMETRY_FIELDS.values()}
    # refuse what the decoder would refuse
    validate_record(d | {"x": None}, _SPECS, True, True, None, DEFAULT_LIMITS, raw_keys=frozenset({_X}))
    check_extras("x", tel.x, DEFAULT_LIMITS)
    if fmt == "json":
        out = {k: v for k, v in d.items() if v is not None}
        if tel.x is not None:
            out["x"] = {k: tel.x[k] for k in sorted(tel.x, key=_codec.x_key_order)}
        return msgspec.json.encode(out)
    if fmt != "cbor":
        raise ValueError(f"unknown format {fmt!r}")
    cbor_map = {key: _codec.wrap_floats(d[name]) for key, name in TELEMETRY_FIELDS.items() if d[name] is not None}
    return _codec.dumps(cbor_map)
